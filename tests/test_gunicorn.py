"""Real gunicorn: every endpoint over HTTP, start-up failures in one line, `accident-api serve`."""
import json
import re
import subprocess
import sys
import time

import pytest
import requests

from accident_api.schemas import SEED_RECORD

from tests.fixtures.service import ROOT, free_port, server_env, start_process, wait_until_serving, \
    LiveServer, without_id

pytestmark = pytest.mark.integration


def test_serves_the_seed_payload_with_two_workers(live_server):
    response = requests.post(f"{live_server.url}/predict", json=SEED_RECORD, timeout=10)
    assert response.status_code == 200
    assert set(response.json()) == {"prediction", "probability", "label", "model_version",
                                    "prediction_id", "imputed"}
    assert without_id(requests.post(f"{live_server.url}/predict/", json=SEED_RECORD, timeout=10,
                                    allow_redirects=False).json()) == without_id(response.json())
    assert len(live_server.wait_for_workers(2)) == 2


def test_every_get_endpoint_answers(live_server):
    for path in ("/", "/model", "/health/live", "/health/ready", "/openapi.json", "/docs",
                 "/v2", "/v2/health/live", "/v2/health/ready",
                 "/v2/models/accident-severity-rf", "/v2/models/accident-severity-rf/ready"):
        assert requests.get(live_server.url + path, timeout=10).status_code == 200, path


def test_batch_keeps_order(live_server):
    records = [{**SEED_RECORD, "victim_age": float(age)} for age in (2, 50, 99, 20, 75)]
    items = requests.post(f"{live_server.url}/predict/batch", json={"records": records},
                          timeout=10).json()["predictions"]
    singles = [requests.post(f"{live_server.url}/predict", json=r, timeout=10).json()
               for r in records]
    assert [without_id(item) for item in items] == [without_id(item) for item in singles]


@pytest.mark.parametrize("kwargs, status, body", [
    ({"data": "{oops", "headers": {"Content-Type": "application/json"}}, 400,
     {"code": 400, "status": "Bad Request", "message": "Invalid JSON body.",
      "errors": {"json": ["Invalid JSON body."]}}),
    ({"data": "catu=1", "headers": {"Content-Type": "text/plain"}}, 415,
     {"code": 415, "status": "Unsupported Media Type",
      "message": "Content-Type must be application/json."}),
    ({"json": {**SEED_RECORD, "sexe": 3, "speed": 1}}, 422,
     {"code": 422, "status": "Unprocessable Entity",
      "message": "The request was well-formed but was unable to be followed due to semantic "
                 "errors.",
      # each bad field named with its reason
      "errors": {"json": {"sexe": ["Must be one of the codes -1, 1, 2."],
                          "speed": ["Unknown field."]}}}),
], ids=["400", "415", "422"])
def test_error_classes_over_http(live_server, kwargs, status, body):
    response = requests.post(f"{live_server.url}/predict", timeout=10, **kwargs)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == body


def test_404_405_and_body_too_large_over_http(live_server_factory):
    server = live_server_factory(MAX_CONTENT_LENGTH=4096, MAX_BATCH_SIZE=5)
    assert requests.get(f"{server.url}/nope", timeout=10).json()["code"] == 404
    assert requests.delete(f"{server.url}/predict", timeout=10).json()["code"] == 405
    too_many = requests.post(f"{server.url}/predict/batch", json={"records": [SEED_RECORD] * 6},
                             timeout=10)
    assert too_many.status_code == 413 and "MAX_BATCH_SIZE=5" in too_many.json()["message"]
    too_big = requests.post(f"{server.url}/predict/batch",
                            json={"records": [SEED_RECORD] * 20}, timeout=10)
    assert too_big.status_code == 413 and too_big.json()["status"] == "Request Entity Too Large"


def _stdout_lines_with(server, marker, timeout=10.0):
    """The server's stdout lines containing `marker`, once there is one (the worker writes its
    access line right after the response, so it may land a moment after the client returns)."""
    deadline = time.monotonic() + timeout
    while True:
        text = (server.log_dir / "stdout").read_text()
        lines = [line for line in text.splitlines() if marker in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


ACCESS_LINE = re.compile(
    r'127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
    r'"GET /health/live\?probe=combined HTTP/1\.1" 200 \d+ '
    r'"http://example\.org/\\"q\\"" "python-requests/[\d.]+"')


def test_access_log_on_stdout_in_gunicorns_format(live_server_factory):
    server = live_server_factory(ACCESS_LOG="1")
    requests.get(f"{server.url}/health/live?probe=combined", timeout=10,
                 headers={"Referer": 'http://example.org/"q"'})
    lines = _stdout_lines_with(server, "probe=combined")
    assert len(lines) == 1 and ACCESS_LINE.fullmatch(lines[0]), lines


def test_access_log_off_by_default(live_server_factory):
    server = live_server_factory()
    assert requests.get(f"{server.url}/health/live?probe=off", timeout=10).ok
    assert requests.post(f"{server.url}/predict", json=SEED_RECORD, timeout=10).ok
    server.stop()  # every line the workers would write is out once the server has exited
    assert server.process.returncode == 0 and "Shutting down: Master" in server.logs()
    assert "probe=off" not in server.logs() and '"POST /predict' not in server.logs()


def test_operator_access_log_format_still_works(live_server_factory):
    """`--access-logformat` on gunicorn's command line: gunicorn's own atoms, headers included."""
    server = live_server_factory(ACCESS_LOG="1", argv=[
        sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--access-logformat",
        "custom %(m)s %(U)s q=%(q)s %(s)s %({x-trace}i)s %({content-type}o)s", "wsgi:app"])
    requests.get(f"{server.url}/health/live?a=1", headers={"X-Trace": "t-42"}, timeout=10)
    assert _stdout_lines_with(server, "custom ") == [
        "custom GET /health/live q=a=1 200 t-42 application/json"]


def _failed_start(env, argv):
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return result.returncode, lines


@pytest.mark.parametrize("argv", [
    [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
    [sys.executable, "-m", "accident_api", "serve"],
], ids=["gunicorn", "serve"])
def test_missing_model_stops_start_up_with_one_clear_line(tmp_path, argv):
    env = server_env(tmp_path / "no-model-here", tmp_path)
    code, lines = _failed_start(env, argv)
    assert code != 0
    reasons = [line for line in lines if "accident-api cannot start:" in line]
    assert len(reasons) == 1 and "no-model-here" in reasons[0], lines
    assert not any("Traceback" in line for line in lines), lines


def test_unusable_environment_stops_start_up_with_one_line(tmp_path, trained_model_dir):
    env = server_env(trained_model_dir, tmp_path, MAX_BATCH_SIZE="many")
    code, lines = _failed_start(env, [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                                      "wsgi:app"])
    assert code != 0 and lines == ["accident-api cannot start: MAX_BATCH_SIZE='many' is not an "
                                   "integer"]


def test_serve_command_flags_override_the_environment(tmp_path, trained_model_dir):
    # the environment points at a missing model and other ports: the flags must win
    env = server_env(tmp_path / "wrong-model", tmp_path, WEB_CONCURRENCY="5")
    port, metrics_port = free_port(), free_port()
    argv = [sys.executable, "-m", "accident_api", "serve", "--model", str(trained_model_dir),
            "--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(metrics_port),
            "--workers", "2"]
    process = start_process(argv, env, tmp_path / "logs")
    server = LiveServer(process, f"http://127.0.0.1:{port}",
                        f"http://127.0.0.1:{metrics_port}/metrics",
                        tmp_path / "metrics", tmp_path / "logs", env)
    try:
        wait_until_serving(server)
        assert requests.post(f"{server.url}/predict", json=SEED_RECORD, timeout=10).ok
        assert len(server.wait_for_workers(2)) == 2
        server.wait_for_metrics(lambda s: any(
            name == "http_requests_total" and value == 1 for (name, _), value in s.items()))
    finally:
        server.stop()
    assert process.returncode == 0  # SIGTERM is a graceful, successful stop


CONF_CHECK = """
import json, runpy
from accident_api.server import hooks
ns = runpy.run_path("gunicorn.conf.py")
names = ("on_starting", "when_ready", "pre_fork", "post_fork", "post_worker_init",
         "worker_exit", "child_exit", "on_reload")
print(json.dumps({"hooks": [ns[n] is getattr(hooks, n) for n in names],
                  "settings": [ns["bind"], ns["workers"], ns["timeout"], ns["accesslog"],
                               ns["max_requests"]]}))
"""


def test_gunicorn_conf_writes_the_configs_settings_and_names_the_hooks(tmp_path):
    env = server_env(tmp_path / "model", tmp_path, PORT="8123", WEB_CONCURRENCY="3",
                     GUNICORN_TIMEOUT="7", ACCESS_LOG="1", MAX_REQUESTS="0")
    done = subprocess.run([sys.executable, "-c", CONF_CHECK], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {"hooks": [True] * 8, "settings": ["127.0.0.1:8123", 3, 7, "-", 0]}


def test_master_freezes_its_heap_before_each_fork():
    """pre_fork moves the preloaded heap out of the workers' garbage collector's reach."""
    import gc

    from accident_api.server.hooks import pre_fork

    assert gc.get_freeze_count() == 0
    try:
        pre_fork(None, None)
        frozen = gc.get_freeze_count()
        assert frozen > 0
        later = [object()]  # created after the first fork: frozen by the next one
        pre_fork(None, None)
        assert gc.get_freeze_count() > frozen and later
    finally:
        gc.unfreeze()  # the test process is not a gunicorn master
