"""The container scripts: entrypoint (wipe multiprocess dir, exec as PID 1) and trainer."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def test_entrypoint_wipes_multiproc_dir_and_execs(tmp_path):
    multiproc = tmp_path / "multiproc"
    (multiproc / "old").mkdir(parents=True)
    (multiproc / "counter_123.db").write_bytes(b"stale")
    (multiproc / "old" / "gauge_livesum_9.db").write_bytes(b"stale")
    inode = multiproc.stat().st_ino
    process = subprocess.Popen(
        [str(ROOT / "docker" / "entrypoint.sh"), "sh", "-c",
         'echo "$$"; ls -A "$PROMETHEUS_MULTIPROC_DIR"'],
        stdout=subprocess.PIPE, text=True,
        env={"PATH": os.environ["PATH"], "PROMETHEUS_MULTIPROC_DIR": str(multiproc)})
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    pid, *listing = out.splitlines()
    assert int(pid) == process.pid, "the command must replace the script (exec), as PID 1"
    assert listing == []
    assert multiproc.stat().st_ino == inode, "the directory itself (maybe a tmpfs) is kept"


def test_entrypoint_creates_default_dir(tmp_path):
    done = subprocess.run([str(ROOT / "docker" / "entrypoint.sh"), "sh", "-c",
                           'test -d "$PROMETHEUS_MULTIPROC_DIR" && echo "$PROMETHEUS_MULTIPROC_DIR"'],
                          capture_output=True, text=True, timeout=10,
                          env={"PATH": os.environ["PATH"],
                               "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "new" / "dir")})
    assert done.returncode == 0 and done.stdout.strip() == str(tmp_path / "new" / "dir")


@pytest.fixture
def trainer(tmp_path):
    """Run docker/train.sh with a stub `accident-api` that logs its arguments."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    stub = bin_dir / "accident-api"
    stub.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    stub.chmod(0o755)
    models = tmp_path / "models"
    models.mkdir()

    def run(**env):
        done = subprocess.run(
            [str(ROOT / "docker" / "train.sh")], capture_output=True, text=True, timeout=10,
            env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "MODEL_PATH": str(models),
                 "DATA_DIR": str(tmp_path / "data"), **env})
        calls = log.read_text().splitlines() if log.exists() else []
        return done, calls
    run.models = models
    return run


def test_trainer_synthetic_by_default(trainer):
    done, calls = trainer()
    assert done.returncode == 0, done.stderr
    assert calls == [f"train --synthetic --out {trainer.models}"]


def test_trainer_real_baac_year(trainer, tmp_path):
    done, calls = trainer(TRAIN_SOURCE="baac:2021")
    assert done.returncode == 0, done.stderr
    raw = tmp_path / "data" / "raw"
    assert calls == [f"data download --year 2021 --dest {raw}",
                     f"train --raw-dir {raw} --year 2021 --out {trainer.models}"]


def test_trainer_keeps_an_existing_model_unless_forced(trainer):
    (trainer.models / "model_card.json").write_text("{}")
    done, calls = trainer()
    assert done.returncode == 0 and calls == []
    assert "already" in done.stdout
    done, calls = trainer(FORCE_TRAIN="1")
    assert calls == [f"train --synthetic --out {trainer.models}"]


def test_trainer_real_baac_years(trainer, tmp_path):
    done, calls = trainer(TRAIN_SOURCE="baac:2019-2023")
    assert done.returncode == 0, done.stderr
    raw = tmp_path / "data" / "raw"
    assert calls == [f"data download --years 2019-2023 --dest {raw}",
                     f"train --raw-dir {raw} --years 2019-2023 --out {trainer.models}"]


@pytest.mark.parametrize("source", ["baac", "baac:21", "csv:2021", "baac:2019-23", "baac:2019-"])
def test_trainer_rejects_unknown_source(trainer, source):
    done, calls = trainer(TRAIN_SOURCE=source)
    assert done.returncode == 2 and calls == []
    assert "TRAIN_SOURCE must be 'synthetic', 'baac:YEAR' or 'baac:FIRST-LAST'" in done.stderr


def _dockerfile_env_and_cmd() -> tuple[dict, list]:
    """The Dockerfile's ENV block and CMD, as the container would get them."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env = {}
    for line in re.findall(r"^ENV (.*)$", text, re.M):
        env.update(dict(pair.split("=", 1) for pair in line.split()))
    return env, json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))


@pytest.mark.integration
def test_container_command_serves_and_stops_on_sigterm(trained_model_dir, tmp_path):
    """entrypoint + CMD with the image's environment (loopback and free ports instead of
    0.0.0.0:8000/9200): gunicorn runs as the entrypoint's own PID, answers readiness and the
    HEALTHCHECK, and SIGTERM stops it cleanly."""
    env, command = _dockerfile_env_and_cmd()
    assert env["HOST"] == "0.0.0.0" and command[0] == "gunicorn"
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir()
    (multiproc / "counter_1.db").write_bytes(b"stale")
    port, metrics = free_port(), free_port()
    env.update(HOST="127.0.0.1", PORT=str(port), METRICS_PORT=str(metrics),
               MODEL_PATH=str(trained_model_dir), PROMETHEUS_MULTIPROC_DIR=str(multiproc),
               WEB_CONCURRENCY="1", GRACEFUL_TIMEOUT="5",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", PYTHONPATH=str(ROOT))
    log = (tmp_path / "log").open("w")
    process = subprocess.Popen([str(ROOT / "docker" / "entrypoint.sh"), *command], cwd=ROOT,
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        ready = requests.get(f"http://127.0.0.1:{port}/health/ready", timeout=5)
        assert ready.status_code == 200, (tmp_path / "log").read_text()
        assert f"[{process.pid}] [INFO] Starting gunicorn" in (tmp_path / "log").read_text(), \
            "gunicorn must be the entrypoint's own process (exec), PID 1 in the container"
        assert not (multiproc / "counter_1.db").exists()
        health = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$",
                           (ROOT / "Dockerfile").read_text().replace("\\\n", " "), re.M)
        probe = json.loads(health.group(1))
        assert subprocess.run([sys.executable, *probe[1:]], env=env, timeout=10).returncode == 0
        assert "model_info{" in requests.get(f"http://127.0.0.1:{metrics}/metrics", timeout=5).text
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        log.close()
    assert code == 0, (tmp_path / "log").read_text()[-2000:]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
