"""Faults beside the request path (Prometheus, metrics port, metric files) and HTTP limits.

Real gunicorn on 127.0.0.1 under load from load/run.py's scheduler; each test reports its
figures (the `figures` fixture) and asserts them.
"""
import glob
import socket
import sys
import time
from urllib.parse import urlsplit

import pytest
import requests

from load.background import BackgroundLoad, predict_requests
from tests.fixtures.observability import start_prometheus, stop_prometheus
from tests.fixtures.reliability import wait_ready
from tests.fixtures.service import LiveServer, metric_total, server_env, start_process
from tests.test_reliability_lifecycle import hold_a_worker, outcome_of

pytestmark = pytest.mark.integration


def test_prometheus_going_away_never_affects_predictions(live_server_factory, seed_record,
                                                         tmp_path, figures):
    server = live_server_factory()
    target = urlsplit(server.metrics_url).netloc
    for name in ("prom1", "prom2"):
        (tmp_path / name).mkdir()
    prometheus = start_prometheus(target, tmp_path / "prom1")
    with BackgroundLoad(server.url, predict_requests(seed_record), rate=40) as load:
        prometheus.wait_for(lambda: prometheus.scalar('up{job="accident-api"}') == 1, 30,
                            "a first scrape")
        stop_prometheus(prometheus)                      # Prometheus down mid-load
        down_from = load.sent
        time.sleep(2.0)
        prometheus = start_prometheus(target, tmp_path / "prom2")
        up_again = prometheus.wait_for(
            lambda: prometheus.scalar('sum(http_requests_total)'), 30, "a scrape after restart")
        stop_prometheus(prometheus)
    figures(f"Prometheus stopped after {down_from} requests, restarted, stopped: "
            f"{load.summary()}; restarted Prometheus read sum(http_requests_total)={up_again}")
    assert load.stats.errors == 0 and load.result.dropped == 0, load.summary()
    assert load.count("200") > 0 and up_again > 0


def test_metrics_port_taken_is_one_warning_and_predictions_still_served(
        trained_model_dir, tmp_path, seed_record, figures):
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(1)
    taken = squatter.getsockname()[1]
    env = server_env(trained_model_dir, tmp_path, METRICS_PORT=taken)
    process = start_process([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                             "wsgi:app"], env, tmp_path / "logs")
    server = LiveServer(process, f"http://127.0.0.1:{env['PORT']}",
                        f"http://127.0.0.1:{taken}/metrics", tmp_path / "metrics",
                        tmp_path / "logs", env)
    try:
        wait_ready(server.url)
        with BackgroundLoad(server.url, predict_requests(seed_record), rate=30,
                            max_requests=60) as load:
            load.finish()
        warnings = [line for line in server.logs().splitlines()
                    if "metrics exporter NOT started" in line]
        figures(f"metrics port {taken} taken: {load.summary()}; log: {warnings}")
        assert load.count("200") == load.result.scheduled == 60
        assert len(warnings) == 1 and "[WARNING]" in warnings[0]
        assert process.poll() is None
    finally:
        server.stop()
        squatter.close()


def test_multiprocess_dir_stays_bounded_over_many_worker_recycles(live_server_factory,
                                                                  seed_record, figures):
    server = live_server_factory(MAX_REQUESTS=4, MAX_REQUESTS_JITTER=0)
    sizes, recycled = [], set()
    with BackgroundLoad(server.url, predict_requests(seed_record), rate=40,
                        max_requests=320) as load:
        while load.running:
            recycled.update(server.worker_pids())
            sizes.append(len(glob.glob(str(server.metrics_dir / "*.db"))))
            time.sleep(0.2)
    counted = metric_total(server.wait_for_metrics(lambda s: metric_total(
        s, "http_requests_total", endpoint="predictions.predict") == 320),
        "http_requests_total", endpoint="predictions.predict")
    files = sorted(p.name for p in server.metrics_dir.glob("*.db"))
    figures(f"{len(recycled)} worker pids seen (max_requests=4): {load.summary()}; "
            f"metric files over time max {max(sizes)} (now {len(files)}: {files}); "
            f"server counted {counted:.0f}")
    assert len(recycled) >= 30, "the test must have recycled many workers"
    assert load.stats.errors == 0 and load.result.dropped == 0, load.summary()
    # the documented bound (docs/monitoring.md): 4 files per live process (master + 2 workers)
    # + 3 archives = 15
    # (gunicorn runs child_exit, the compaction, before it forks the replacement)
    assert max(sizes) <= 15 and len(files) <= 15, files
    assert counted == load.count("200") == 320, "compaction must keep every count"


def test_http_limits_are_enforced_before_the_app(live_server_factory, seed_record, figures):
    server = live_server_factory(MAX_BATCH_SIZE=10, MAX_CONTENT_LENGTH=64 * 1024)
    url = server.url + "/predict"
    cases = {
        "request line > 4094": requests.get(server.url + "/model?x=" + "a" * 5000, timeout=10),
        "101 header fields": requests.post(url, json=seed_record, timeout=10, headers={
            f"X-Filler-{n}": "1" for n in range(101)}),
        "header field > 8190 bytes": requests.post(url, json=seed_record, timeout=10,
                                                   headers={"X-Big": "b" * 9000}),
        "body > MAX_CONTENT_LENGTH": requests.post(url, data=b"{" + b" " * 70000 + b"}",
                                                   timeout=10,
                                                   headers={"Content-Type": "application/json"}),
        "batch > MAX_BATCH_SIZE": requests.post(server.url + "/predict/batch", timeout=10,
                                                json={"records": [seed_record] * 11}),
    }
    statuses = {name: response.status_code for name, response in cases.items()}
    figures(f"limits: {statuses}")
    assert statuses == {"request line > 4094": 414, "101 header fields": 431,
                        "header field > 8190 bytes": 431, "body > MAX_CONTENT_LENGTH": 413,
                        "batch > MAX_BATCH_SIZE": 413}
    assert "10" in cases["batch > MAX_BATCH_SIZE"].json()["message"]
    assert requests.post(url, json=seed_record, timeout=10).status_code == 200


def test_a_slow_client_holds_a_worker_no_longer_than_the_worker_timeout(live_server_factory,
                                                                       seed_record, figures):
    timeout = 3
    server = live_server_factory(GUNICORN_TIMEOUT=timeout)
    started = time.monotonic()
    slow = [hold_a_worker(server.url) for _ in range(2)]   # both sync workers now blocked
    for sock in slow:
        sock.settimeout(4 * timeout + 10)
    waited_from = time.monotonic()
    answer = requests.post(server.url + "/predict", json=seed_record, timeout=4 * timeout + 10)
    served_after = time.monotonic() - waited_from
    outcomes = [outcome_of(sock) for sock in slow]
    released_after = time.monotonic() - started
    for sock in slow:
        sock.close()
    timeouts = server.logs().count("WORKER TIMEOUT")
    figures(f"slow clients x2 with GUNICORN_TIMEOUT={timeout}s: a normal request was "
            f"answered {answer.status_code} after {served_after:.1f}s; slow connections ended "
            f"{outcomes} after {released_after:.1f}s; WORKER TIMEOUT lines {timeouts}")
    assert answer.status_code == 200
    assert served_after < 3 * timeout + 5
    # the timed-out worker is aborted: its slow client gets a 500 or a closed connection
    assert all(outcome == "reset" or outcome.startswith("HTTP/1.1 5") for outcome in outcomes)
    assert released_after < 3 * timeout + 5
    assert timeouts >= 1
