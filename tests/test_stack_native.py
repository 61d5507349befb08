"""`make stack` without Docker: scripts/stack.sh starts gunicorn and Prometheus on loopback,
Prometheus scrapes the API's sidecar with the repo's config, Ctrl-C stops both."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("prometheus") is None,
                                 reason="Debian prometheus not installed (make system-deps)")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Output:
    """Collects a process's output lines on a thread so waiting never blocks on a pipe."""

    def __init__(self, stream):
        self.lines: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            time.sleep(0.2)
        return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_native_stack_starts_scrapes_and_stops(trained_model_dir):
    api, metrics, prom = free_port(), free_port(), free_port()
    env = {**os.environ, "VENV_BIN": str(Path(sys.executable).parent),
           "MODEL_DIR": str(trained_model_dir), "PORT": str(api),
           "METRICS_PORT": str(metrics), "PROMETHEUS_PORT": str(prom),
           "WEB_CONCURRENCY": "1", "GRACEFUL_TIMEOUT": "5"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen([str(ROOT / "scripts" / "stack.sh")], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = Output(process.stdout)
    try:
        assert out.wait_for("stack ready", 90), "\n".join(out.lines[-30:])
        text = "\n".join(out.lines)
        api_pid, prom_pid, run_dir = re.search(
            r"api pid (\d+), prometheus pid (\d+) \(config (\S+)/prometheus\)", text).groups()
        assert f"http://127.0.0.1:{prom}/" in text and f"http://127.0.0.1:{api}/" in text
        # the load hint works as printed on a non-default port
        assert f"make load LOAD_ARGS='--url http://127.0.0.1:{api} " in text
        # the rewritten config keeps the job name and rules, pointing at the loopback sidecar
        config = (Path(run_dir) / "prometheus" / "prometheus.yml").read_text()
        assert f'"127.0.0.1:{metrics}"' in config and "api:9200" not in config
        assert requests.get(f"http://127.0.0.1:{api}/health/ready", timeout=5).status_code == 200
        deadline, health = time.monotonic() + 30, None
        while time.monotonic() < deadline and health != "up":
            targets = requests.get(f"http://127.0.0.1:{prom}/api/v1/targets", timeout=5).json()
            health = next((t["health"] for t in targets["data"]["activeTargets"]
                           if t["labels"]["job"] == "accident-api"), None)
            time.sleep(0.5)
        assert health == "up"
        rules = requests.get(f"http://127.0.0.1:{prom}/api/v1/rules", timeout=5).json()
        assert rules["data"]["groups"], "the repo's rule files were not loaded"
    finally:
        process.send_signal(signal.SIGINT)              # what Ctrl-C does to `make stack`
        process.wait(timeout=40)
    assert out.wait_for("stack stopped", 5)
    for pid in (int(api_pid), int(prom_pid)):
        assert not alive(pid), f"process {pid} outlived the stack"
    assert not Path(run_dir).exists()
