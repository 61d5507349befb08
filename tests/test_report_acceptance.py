"""Acceptance of `accident-api report` against the real service: a model trained here and
served by gunicorn, two runs of `python load/run.py --replay` through BAAC files of synthetic
accidents, the true outcome of half of them sent back by its --feedback (the second run with
the speed limit `vma` shifted by +20 km/h, --drift), a real Prometheus scraping the sidecar,
then one report per run's window, built from the log the service wrote.

- the undrifted window flags no feature; the drifted one flags `vma` and no other;
- the report's accuracy on the labelled rows equals the realised accuracy Prometheus shows for
  the same window: (tp + tn) / all of model_feedback_total's increase between the window's
  ends, computed by Prometheus from the raw counter values at those two instants (not
  `increase()`, which extrapolates to the range's edges);
- the page opens in headless Chromium with no console error and asks for nothing but itself.

The model is trained on 20,000 synthetic accidents, the default size, so its reference holds
4,000 rows: above 1,000, Evidently's default tests are distances (Wasserstein, Jensen-Shannon),
which sampling noise keeps below their 0.1 threshold for windows of this size (docs/monitoring.md,
"Offline report").
"""
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from model import synth
from model.card import read_card
from monitoring.prediction_log import utc_now
from tests.fixtures.browser import file_url
from tests.fixtures.observability import start_prometheus, stop_prometheus
from tests.fixtures.report import (accident_records, accuracy_of, labelled_cells, replay,
                                   send_traffic)
from tests.fixtures.service import ROOT, start_gunicorn

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ACCIDENTS = 4000  # per run
RATE = 400  # predictions/s; the labels come on top
CORRECT = 'model_feedback_total{outcome=~"tp|tn"}'
ALL = "model_feedback_total"


def http_post(base_url):
    session = requests.Session()

    def post(path, body):
        response = session.post(base_url + path, json=body, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()
    return post


def counted_at(prometheus, total: int) -> float:
    """The time at which Prometheus first holds ``total`` labels in model_feedback_total."""
    def settled():
        result = prometheus.query(f"sum({ALL})")
        return result and float(result[0]["value"][1]) == total and result[0]["value"][0]
    return float(prometheus.wait_for(settled, timeout=30, what=f"{total} labels in Prometheus"))


def realised_accuracy(prometheus, start: float | None, end: float) -> float:
    """(tp + tn) / all labels counted between ``start`` (None: the server's start) and ``end``."""
    if start is None:
        expression = f"sum({CORRECT}) / sum({ALL})"
    else:
        expression = (f"(sum({CORRECT}) - sum({CORRECT} @ {start})) / "
                      f"(sum({ALL}) - sum({ALL} @ {start}))")
    (sample,) = prometheus.query(expression, at=end)
    return float(sample["value"][1])


def report(env, tmp_path, name, since, until) -> tuple:
    """`accident-api report` of [since, until) in its own process, with the service's settings."""
    out, results = tmp_path / f"{name}.html", tmp_path / f"{name}.json"
    done = subprocess.run(
        [sys.executable, "-m", "accident_api", "report", "--since", since.isoformat(),
         "--until", until.isoformat(), "--out", str(out), "--json", str(results)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(results.read_text()), out, done.stdout


def test_the_report_of_two_runs_flags_the_drift_and_matches_prometheus(quality_model_dir,
                                                                       tmp_path, browser):
    baac = {name: tmp_path / f"baac-{name}" for name in ("steady", "drifted")}
    synth.write(baac["steady"], ACCIDENTS, seed=101)
    synth.write(baac["drifted"], ACCIDENTS, seed=102)
    server = start_gunicorn(quality_model_dir, tmp_path / "server")
    prometheus = None
    try:
        (tmp_path / "prom").mkdir()
        prometheus = start_prometheus(urlsplit(server.metrics_url).netloc, tmp_path / "prom")
        started = utc_now()
        _, answers = replay(server.url, baac["steady"], tmp_path / "steady", "--feedback",
                            "0.5,0", rate=RATE, accidents=ACCIDENTS)
        steady = labelled_cells(answers)
        steady_at = counted_at(prometheus, sum(steady.values()))
        between = utc_now()
        _, answers = replay(server.url, baac["drifted"], tmp_path / "drifted", "--feedback",
                            "0.5,0", "--drift", "vma=20", rate=RATE, accidents=ACCIDENTS)
        drifted = labelled_cells(answers)
        drifted_at = counted_at(prometheus, sum(steady.values()) + sum(drifted.values()))
        ended = utc_now()
        prometheus_steady = realised_accuracy(prometheus, None, steady_at)
        prometheus_drifted = realised_accuracy(prometheus, steady_at, drifted_at)
    finally:
        if prometheus is not None:
            stop_prometheus(prometheus)
        server.stop()

    env = {key: value for key, value in server.env.items()
           if key != "PROMETHEUS_MULTIPROC_DIR"}  # the report exports no metric
    first, _, printed = report(env, tmp_path, "steady", started, between)
    second, page, _ = report(env, tmp_path, "drifted", between, ended)
    assert first["window"]["rows"] == second["window"]["rows"] == ACCIDENTS
    assert first["data_drift"]["drifted"] == [], first["data_drift"]["by_feature"]
    assert second["data_drift"]["drifted"] == ["vma"], second["data_drift"]["by_feature"]
    assert all(entry["statistic"] == "distance" for entry in
               second["data_drift"]["by_feature"].values())
    assert "0 of 28 features drifted" in printed

    for results, cells, realised in ((first, steady, prometheus_steady),
                                     (second, drifted, prometheus_drifted)):
        quality = results["quality"]["current"]
        assert results["window"]["labelled_rows"] == sum(cells.values())
        assert quality["confusion_matrix"] == cells
        assert quality["accuracy"] == realised == accuracy_of(cells)

    opened = browser.open(file_url(page))
    # the last section drawn: every widget before it has rendered (or logged its error)
    deadline = time.monotonic() + 30
    while not opened.evaluate("document.body.innerText.includes("
                              "'Calibration: expected calibration error')"):
        assert time.monotonic() < deadline, "the report never rendered its last section"
        time.sleep(0.2)
    assert opened.evaluate("document.querySelectorAll('.js-plotly-plot').length") > 0
    assert opened.console_errors() == []
    assert [url for url in opened.requested_urls()
            if not url.startswith(("file:", "data:", "blob:"))] == []


def read_only_mount_available() -> bool:
    """Root with mount namespaces (unshare -m): a read-only bind mount, as compose mounts the
    prediction-log volume into the report service."""
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def report_from_read_only_mount(data_dir, mount, env, out) -> subprocess.CompletedProcess:
    """`accident-api report` reading ``data_dir`` through a read-only bind mount at ``mount``."""
    command = (f"mount --bind {data_dir} {mount} && mount -o remount,bind,ro {mount} && "
               f"exec {sys.executable} -m accident_api report --since 1h --out {out} "
               f"--min-labelled 10")
    return subprocess.run(["unshare", "-m", "sh", "-c", command], cwd=ROOT, timeout=300,
                          env={**env, "DATA_DIR": str(mount)}, capture_output=True, text=True)


@pytest.mark.skipif(not read_only_mount_available(), reason="needs root and unshare -m")
def test_the_report_reads_the_sqlite_log_through_a_read_only_mount(live_server_factory,
                                                                    trained_model_dir, tmp_path):
    """A read-only reader of a WAL-mode SQLite file needs its -wal and -shm files: the service
    keeps them while it runs and leaves them when its workers exit. A log whose last writer
    closed it cleanly (they are gone) cannot be opened through a read-only mount, and the
    report says so (docs/monitoring.md)."""
    import sqlite3

    server = live_server_factory()
    imputation = read_card(trained_model_dir)["imputation"]
    traffic = send_traffic(http_post(server.url), *accident_records(200, 31, imputation))
    data, mount = Path(server.env["DATA_DIR"]), tmp_path / "read-only"
    mount.mkdir()
    env = {key: value for key, value in server.env.items()
           if key != "PROMETHEUS_MULTIPROC_DIR"}
    summary = f"{len(traffic.predictions)} prediction(s) of model "
    running = report_from_read_only_mount(data, mount, env, tmp_path / "running.html")
    assert running.returncode == 0 and running.stdout.startswith(summary), running.stderr
    server.stop()
    assert {path.name for path in data.iterdir()} >= {"predictions.sqlite3-wal",
                                                       "predictions.sqlite3-shm"}
    stopped = report_from_read_only_mount(data, mount, env, tmp_path / "stopped.html")
    assert stopped.returncode == 0 and stopped.stdout.startswith(summary), stopped.stderr
    connection = sqlite3.connect(data / "predictions.sqlite3")
    connection.execute("SELECT count(*) FROM predictions").fetchall()
    connection.close()  # the last connection to close checkpoints and deletes them
    assert sorted(path.name for path in data.iterdir()) == ["predictions.sqlite3"]
    closed = report_from_read_only_mount(data, mount, env, tmp_path / "closed.html")
    assert closed.returncode == 2
    assert closed.stderr == (f"error: cannot read the prediction log at sqlite:///{mount}/"
                             "predictions.sqlite3 ((sqlite3.OperationalError) unable to "
                             "open database file)\n")
