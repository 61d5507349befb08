"""Acceptance of `accident-api report` against the real service: a model trained here and
served by gunicorn, two runs of synthetic accidents with their true outcomes sent back as
feedback (the second with the speed limit `vma` shifted by +20 km/h), a real Prometheus
scraping the sidecar, then one report per run's window, built from the log the service wrote.

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
from urllib.parse import urlsplit

import pytest
import requests

from model import train
from model.card import read_card
from monitoring.prediction_log import utc_now
from tests.fixtures.browser import file_url
from tests.fixtures.model import SMALL_FOREST
from tests.fixtures.observability import start_prometheus, stop_prometheus
from tests.fixtures.report import accident_records, accuracy_of, send_traffic
from tests.fixtures.service import ROOT, start_gunicorn

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ACCIDENTS = 4000  # per run
CORRECT = 'model_feedback_total{outcome=~"tp|tn"}'
ALL = "model_feedback_total"


@pytest.fixture(scope="module")
def report_model(tmp_path_factory):
    """A small forest trained on the default 20,000 synthetic accidents (4,000 reference rows)."""
    out = tmp_path_factory.mktemp("report-model")
    train.train_synthetic(out, 20000, data_seed=42, hyperparameters=SMALL_FOREST,
                          log=lambda message: None)
    return out


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


def test_the_report_of_two_runs_flags_the_drift_and_matches_prometheus(report_model, tmp_path,
                                                                       browser):
    imputation = read_card(report_model)["imputation"]
    server = start_gunicorn(report_model, tmp_path / "server")
    prometheus = None
    try:
        (tmp_path / "prom").mkdir()
        prometheus = start_prometheus(urlsplit(server.metrics_url).netloc, tmp_path / "prom")
        post = http_post(server.url)
        started = utc_now()
        steady = send_traffic(post, *accident_records(ACCIDENTS, 101, imputation))
        steady_at = counted_at(prometheus, len(steady.labelled))
        between = utc_now()
        drifted = send_traffic(post, *accident_records(ACCIDENTS, 102, imputation,
                                                       shift={"vma": 20}))
        drifted_at = counted_at(prometheus, len(steady.labelled) + len(drifted.labelled))
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
    assert first["window"]["rows"] == len(steady.predictions)
    assert second["window"]["rows"] == len(drifted.predictions)
    assert first["data_drift"]["drifted"] == [], first["data_drift"]["by_feature"]
    assert second["data_drift"]["drifted"] == ["vma"], second["data_drift"]["by_feature"]
    assert all(entry["statistic"] == "distance" for entry in
               second["data_drift"]["by_feature"].values())
    assert "0 of 28 features drifted" in printed

    for results, traffic, realised in ((first, steady, prometheus_steady),
                                       (second, drifted, prometheus_drifted)):
        quality = results["quality"]["current"]
        assert results["window"]["labelled_rows"] == len(traffic.labelled)
        assert quality["confusion_matrix"] == traffic.cells
        assert quality["accuracy"] == realised == accuracy_of(traffic.cells)

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
