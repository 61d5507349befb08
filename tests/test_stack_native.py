"""`make stack` without Docker: scripts/stack.sh starts REPLICAS gunicorn instances behind nginx
and a Prometheus on loopback that discovers them from a file with the repo's config and rules;
one instance dying leaves the others serving; Ctrl-C stops everything."""
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


def free_port_run(count: int) -> int:
    """The first of `count` consecutive ports free on 127.0.0.1 right now."""
    for _ in range(50):
        first = free_port()
        try:
            for port in range(first, first + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free ports")


def start_stack(trained_model_dir, replicas=None):
    """scripts/stack.sh on free ports; returns (process, output, ports, pids, run dir)."""
    count = replicas or 1
    ports = {"PORT": free_port(), "INSTANCE_PORT": free_port_run(count),
             "METRICS_PORT": free_port_run(count), "PROMETHEUS_PORT": free_port()}
    env = {**os.environ, "VENV_BIN": str(Path(sys.executable).parent),
           "MODEL_DIR": str(trained_model_dir), "WEB_CONCURRENCY": "1", "GRACEFUL_TIMEOUT": "5",
           **{name: str(port) for name, port in ports.items()}}
    if replicas is not None:
        env["REPLICAS"] = str(replicas)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen([str(ROOT / "scripts" / "stack.sh")], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = Output(process.stdout)
    if not out.wait_for("stack ready", 120):
        process.send_signal(signal.SIGINT)
        process.wait(timeout=40)
        raise AssertionError("\n".join(out.lines[-40:]))
    text = "\n".join(out.lines)
    api, nginx, prom, run_dir = re.search(
        r"api pids ([\d ]+), nginx pid (\d+), prometheus pid (\d+) \(run dir (\S+)\)",
        text).groups()
    pids = {"api": [int(pid) for pid in api.split()], "nginx": int(nginx), "prometheus": int(prom)}
    return process, out, ports, pids, Path(run_dir)


def api_targets(prom_port: int) -> dict:
    """instance -> health of the accident-api job's active targets."""
    targets = requests.get(f"http://127.0.0.1:{prom_port}/api/v1/targets", timeout=5).json()
    return {t["labels"]["instance"]: t["health"] for t in targets["data"]["activeTargets"]
            if t["labels"]["job"] == "accident-api"}


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def stop_stack(process, out, pids, run_dir):
    process.send_signal(signal.SIGINT)              # what Ctrl-C does to `make stack`
    process.wait(timeout=40)
    assert out.wait_for("stack stopped", 5)
    for pid in [*pids["api"], pids["nginx"], pids["prometheus"]]:
        assert not alive(pid), f"process {pid} outlived the stack"
    assert not run_dir.exists()


def test_native_stack_starts_scrapes_and_stops(trained_model_dir):
    process, out, ports, pids, run_dir = start_stack(trained_model_dir)
    try:
        text = "\n".join(out.lines)
        api, prom = ports["PORT"], ports["PROMETHEUS_PORT"]
        assert f"http://127.0.0.1:{prom}/" in text and f"http://127.0.0.1:{api}/" in text
        # the load hint works as printed on a non-default port
        assert f"make load LOAD_ARGS='--url http://127.0.0.1:{api} " in text
        assert len(pids["api"]) == 1, "one API instance by default"
        # the API port is nginx's: it answers with the instance's readiness
        answer = requests.get(f"http://127.0.0.1:{api}/health/ready", timeout=5)
        assert answer.status_code == 200 and answer.headers["Server"] == "nginx"
        # Prometheus finds the instance in its file_sd list, with the repo's rules loaded
        metrics = f"127.0.0.1:{ports['METRICS_PORT']}"
        wait_for(lambda: api_targets(prom) == {metrics: "up"}, 30, "the instance scraped")
        config = (run_dir / "prometheus" / "prometheus.yml").read_text()
        assert "file_sd_configs" in config and "dns_sd_configs" not in config
        rules = requests.get(f"http://127.0.0.1:{prom}/api/v1/rules", timeout=5).json()
        assert rules["data"]["groups"], "the repo's rule files were not loaded"
    finally:
        stop_stack(process, out, pids, run_dir)


@pytest.mark.slow
def test_native_stack_with_three_replicas_behind_nginx(trained_model_dir):
    process, out, ports, pids, run_dir = start_stack(trained_model_dir, replicas=3)
    try:
        api, prom = ports["PORT"], ports["PROMETHEUS_PORT"]
        instances = [f"127.0.0.1:{ports['INSTANCE_PORT'] + i}" for i in range(3)]
        metrics = {f"127.0.0.1:{ports['METRICS_PORT'] + i}" for i in range(3)}
        assert len(pids["api"]) == 3
        # Prometheus discovers every instance as a target of its own
        wait_for(lambda: api_targets(prom) == dict.fromkeys(metrics, "up"), 90,
                 "three instances scraped")
        # nginx spreads requests over the three
        for _ in range(6):
            assert requests.get(f"http://127.0.0.1:{api}/health/live", timeout=5).ok
        for instance in instances:
            assert f"upstream={instance} " in "\n".join(out.lines), instance
        # one instance dying leaves the others serving; the stack stays up
        os.kill(pids["api"][0], signal.SIGKILL)
        assert out.wait_for("2 of 3 still serving", 20), "\n".join(out.lines[-20:])
        statuses = [requests.get(f"http://127.0.0.1:{api}/health/live", timeout=5).status_code
                    for _ in range(6)]
        assert statuses == [200] * 6 and process.poll() is None
    finally:
        stop_stack(process, out, pids, run_dir)
