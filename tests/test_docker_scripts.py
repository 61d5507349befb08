"""The container scripts: entrypoint (wipe multiprocess dir, exec as PID 1), trainer, and
Grafana's entry point (admin password, anonymous viewing)."""
import json
import os
import re
import secrets
import signal
import socket
import stat
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
                           'test -d "$PROMETHEUS_MULTIPROC_DIR" && '
                           'echo "$PROMETHEUS_MULTIPROC_DIR"'],
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


# Grafana's entry point runs in the Alpine-based Grafana image: each test runs it under dash
# (POSIX) and under busybox's shell and applets (Alpine's).
@pytest.fixture(params=["dash", "busybox"])
def grafana_shell(request):
    return request.param


def _generated_password(start) -> str:
    path = start.data / "admin-password"
    return path.read_text().removesuffix("\n")


def test_grafana_first_start_generates_a_password_and_prints_it_once(grafana_entrypoint):
    start = grafana_entrypoint()
    assert start.code == 0, start.output
    assert start.pid_kept, "/run.sh must replace the script (exec)"
    path = grafana_entrypoint.data / "admin-password"
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.getuid()
    password = _generated_password(grafana_entrypoint)
    assert re.fullmatch(r"[A-Za-z0-9]{32}", password)
    assert start.output.count(password) == 1
    assert f"read it again with: docker compose exec grafana cat {path}" in start.output
    assert start.env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == str(path)
    assert "GF_SECURITY_ADMIN_PASSWORD" not in start.env, "/run.sh refuses both at once"
    assert sorted(p.name for p in grafana_entrypoint.data.iterdir()) == ["admin-password"]


def test_grafana_later_starts_reuse_the_password_and_never_print_it(grafana_entrypoint):
    assert grafana_entrypoint().code == 0
    password = _generated_password(grafana_entrypoint)
    path = grafana_entrypoint.data / "admin-password"
    before = path.stat()
    for _ in range(2):
        later = grafana_entrypoint()
        assert later.code == 0, later.output
        assert password not in later.output
        assert "the one generated on the first start" in later.output
        assert later.env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == str(path)
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _generated_password(grafana_entrypoint) == password


def test_grafana_each_new_volume_gets_its_own_password(grafana_entrypoint):
    grafana_entrypoint()
    first = _generated_password(grafana_entrypoint)
    (grafana_entrypoint.data / "admin-password").unlink()
    grafana_entrypoint()
    assert _generated_password(grafana_entrypoint) != first


def test_grafana_operator_password_wins_and_nothing_is_written(grafana_entrypoint):
    mine = secrets.token_urlsafe(24)
    start = grafana_entrypoint({"GF_SECURITY_ADMIN_PASSWORD": mine})
    assert start.code == 0, start.output
    assert start.env["GF_SECURITY_ADMIN_PASSWORD"] == mine
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE" not in start.env
    assert mine not in start.output and "the operator's GF_SECURITY_ADMIN_PASSWORD" in start.output
    assert list(grafana_entrypoint.data.iterdir()) == []


def test_grafana_operator_password_leaves_a_generated_one_untouched(grafana_entrypoint):
    grafana_entrypoint()
    generated = _generated_password(grafana_entrypoint)
    mine = secrets.token_urlsafe(24)
    start = grafana_entrypoint({"GF_SECURITY_ADMIN_PASSWORD": mine})
    assert start.env["GF_SECURITY_ADMIN_PASSWORD"] == mine
    assert generated not in start.output and mine not in start.output
    assert _generated_password(grafana_entrypoint) == generated


def test_grafana_operator_password_file_is_read_never_written(grafana_entrypoint, tmp_path):
    secret = tmp_path / "grafana_admin_password"
    mine = secrets.token_urlsafe(24)
    secret.write_text(mine)
    secret.chmod(0o400)
    before = secret.stat()
    start = grafana_entrypoint({"GF_SECURITY_ADMIN_PASSWORD__FILE": str(secret),
                                "GF_SECURITY_ADMIN_PASSWORD": ""})   # compose's empty default
    assert start.code == 0, start.output
    assert start.env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == str(secret)
    assert "GF_SECURITY_ADMIN_PASSWORD" not in start.env
    assert mine not in start.output and f"the operator's file {secret}" in start.output
    after = secret.stat()
    assert secret.read_text() == mine and after.st_mtime_ns == before.st_mtime_ns
    assert stat.S_IMODE(after.st_mode) == 0o400
    assert list(grafana_entrypoint.data.iterdir()) == []


@pytest.mark.parametrize("env, reason", [
    ({"GF_SECURITY_ADMIN_PASSWORD__FILE": "/nonexistent/grafana_admin_password"},
     "GF_SECURITY_ADMIN_PASSWORD__FILE=/nonexistent/grafana_admin_password is not a readable,"
     " non-empty file"),
    ({"GF_SECURITY_ADMIN_PASSWORD__FILE": "/dev/null", "GF_SECURITY_ADMIN_PASSWORD": "x" * 24},
     "set GF_SECURITY_ADMIN_PASSWORD or GF_SECURITY_ADMIN_PASSWORD__FILE, not both"),
])
def test_grafana_unusable_operator_password_settings_are_refused(grafana_entrypoint, env,
                                                                  reason):
    start = grafana_entrypoint(env)
    assert (start.code, start.env) == (1, None)
    assert start.output.splitlines()[-1] == f"grafana-entrypoint: {reason}"
    assert list(grafana_entrypoint.data.iterdir()) == []


def test_grafana_database_from_before_keeps_its_password(grafana_entrypoint):
    """A grafana-data volume set up with a password from .env: Grafana applies the admin
    password only when it creates its database, so a generated one would not work."""
    (grafana_entrypoint.data / "grafana.db").write_bytes(b"")
    start = grafana_entrypoint({"GF_SECURITY_ADMIN_PASSWORD": ""})
    assert start.code == 0, start.output
    assert "GF_SECURITY_ADMIN_PASSWORD" not in start.env
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE" not in start.env
    assert "reset-admin-password" in start.output
    assert not (grafana_entrypoint.data / "admin-password").exists()


@pytest.mark.parametrize("bind, asked, granted", [
    ("127.0.0.1", "", "true"),          # the local demo's defaults
    ("127.0.0.1", "false", "false"),    # the production profile's default
    ("127.0.0.1", "true", "true"),
    ("::1", "", "true"),
    ("[::1]", "", "true"),
    ("0.0.0.0", "", "false"),           # exposed: sign-in, whatever the default
    ("192.168.1.20", "", "false"),
    ("0.0.0.0", "false", "false"),
])
def test_grafana_anonymous_viewing_only_on_loopback(grafana_entrypoint, bind, asked, granted):
    start = grafana_entrypoint({"BIND_ADDR": bind, "GF_AUTH_ANONYMOUS_ENABLED": asked})
    assert start.code == 0, start.output
    assert start.env["GF_AUTH_ANONYMOUS_ENABLED"] == granted
    if not asked:
        state = "on (role Viewer)" if granted == "true" else "off"
        assert f"grafana-entrypoint: anonymous viewing {state}" in start.output


@pytest.mark.parametrize("bind, asked, reason", [
    ("0.0.0.0", "true", "GF_AUTH_ANONYMOUS_ENABLED=true with BIND_ADDR=0.0.0.0 would show the"
     " dashboards to anyone who can reach this host: set GF_AUTH_ANONYMOUS_ENABLED=false"
     " (sign-in required) or BIND_ADDR=127.0.0.1"),
    ("10.0.0.5", "true", "GF_AUTH_ANONYMOUS_ENABLED=true with BIND_ADDR=10.0.0.5 would show"),
    ("127.0.0.1", "yes", "GF_AUTH_ANONYMOUS_ENABLED must be true, false or empty"),
])
def test_grafana_anonymous_viewing_off_loopback_is_refused_before_any_password(
        grafana_entrypoint, bind, asked, reason):
    start = grafana_entrypoint({"BIND_ADDR": bind, "GF_AUTH_ANONYMOUS_ENABLED": asked})
    assert (start.code, start.env) == (1, None)
    assert start.output.startswith(f"grafana-entrypoint: {reason}")
    assert list(grafana_entrypoint.data.iterdir()) == [], "nothing generated, nothing printed"
