"""End to end: real gunicorn (2 workers) + real Prometheus; every dashboard query, exact
counts across workers, a worker killed mid-test, and PSI drift detection."""
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml

from model.features import FEATURE_SPECS
from model.reference import assign_bins
from tests.fixtures.service import metric_total
from tests.grafana_dashboard import SEED_PANELS, expressions, load_dashboard, substitute
from tests.quality_traffic import CARD_METRIC, alert_tolerance, labels, needs_card

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ALERTS = Path(__file__).resolve().parent.parent / "prometheus" / "rules" / "alerts.yml"
SHIFTED_FEATURE = "victim_age"
MONOTONIC = ("sum(http_requests_total)", "sum(api_predict_total)",
             "sum(model_feature_bin_total)", "sum(inference_time_seconds_count)")


def drift_threshold():
    """The PSI threshold of the ModelFeatureDrift alert, read from the rule itself."""
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    expr = next(r["expr"] for r in rules if r.get("alert") == "ModelFeatureDrift")
    return float(re.search(r"feature:model_psi:1h > ([0-9.]+)", expr).group(1))


class CountingClient:
    """Sends requests to the API and counts every one (the expected http_requests_total)."""

    def __init__(self, base_url):
        self.base_url = base_url.rstrip("/")
        self.sent = 0

    def request(self, method, path, expect, **kwargs):
        self.sent += 1
        response = requests.request(method, self.base_url + path, timeout=30, **kwargs)
        assert response.status_code == expect, (method, path, response.status_code, response.text)
        return response


def bin_values(reference):
    """One valid input value per reference bin of every feature: feature -> {bin: value}.

    Values come from each feature's valid domain (codes or [minimum, maximum]) and are binned
    with the same function the service uses, so a value is counted in the bin we intend.
    """
    values = {}
    for spec in FEATURE_SPECS:
        if spec.name not in reference:
            continue
        edges = np.asarray(reference[spec.name]["edges"], dtype=float)
        if spec.codes is not None:
            candidates = np.asarray(spec.codes, dtype=float)
        else:
            inside = edges[(edges >= spec.minimum) & (edges <= spec.maximum)]
            candidates = np.concatenate([np.linspace(spec.minimum, spec.maximum, 4001), inside])
            if spec.dtype == "int":
                candidates = np.round(candidates)
        candidates = np.unique(candidates)
        bins = assign_bins(edges, candidates)
        values[spec.name] = {int(b): candidates[bins == b][len(candidates[bins == b]) // 2]
                             for b in np.unique(bins)}
        needed = {b for b, r in enumerate(reference[spec.name]["ratios"]) if r > 0}
        assert needed <= set(values[spec.name]), f"{spec.name}: no valid value for bins " \
            f"{needed - set(values[spec.name])}"
    return values


def apportion(n, ratios):
    """Split n into integer counts proportional to ratios (largest remainder)."""
    exact = np.asarray(ratios, dtype=float) / sum(ratios) * n
    counts = np.floor(exact).astype(int)
    for index in np.argsort(exact - counts)[::-1][:n - counts.sum()]:
        counts[index] += 1
    return counts


def records(n, reference, values, rng, shift=None):
    """n records whose every feature reproduces the training bin shares (up to rounding),
    except feature `shift`, whose values all land in its rarest reference bin."""
    columns = {}
    for spec in FEATURE_SPECS:
        if spec.name not in reference:
            columns[spec.name] = [spec.example] * n
            continue
        ratios = reference[spec.name]["ratios"]
        if spec.name == shift:
            rare = min(values[spec.name], key=lambda b: ratios[b])
            column = [values[spec.name][rare]] * n
        else:
            column = np.repeat([values[spec.name].get(b, 0.0) for b in range(len(ratios))],
                               apportion(n, ratios))
            column = rng.permutation(column)
        cast = int if spec.dtype == "int" else float
        columns[spec.name] = [cast(v) for v in column]
    return [{name: columns[name][i] for name in columns} for i in range(n)]


def send_predictions(client, batch):
    """The first 10 records one by one on /predict, the rest in /predict/batch calls of 50;
    the answers (prediction_id, prediction, ...), one per record."""
    answers = [client.request("POST", "/predict", 200, json=record).json()
               for record in batch[:10]]
    for start in range(10, len(batch), 50):
        answers += client.request("POST", "/predict/batch", 200,
                                  json={"records": batch[start:start + 50]}).json()["predictions"]
    return answers


def send_feedback(client, answers):
    """The true outcome of every answer (quality_traffic.labels: all four cells), in one list;
    then one label of each refusal: invalid (422), unknown id (404), conflict (409)."""
    items = labels(answers)
    summary = client.request("POST", "/feedback", 200, json=items).json()["summary"]
    assert summary["recorded"] == len(items), summary
    client.request("POST", "/feedback", 422, json={"prediction_id": items[0]["prediction_id"],
                                                    "actual": "fatal"})
    client.request("POST", "/feedback", 404, json={"prediction_id": "0" * 36, "actual": 1})
    client.request("POST", "/feedback", 409, json=dict(items[0], actual=1 - items[0]["actual"]))


def send_bad_requests(client, record):
    """Client errors: invalid fields (422), empty batch (422), not JSON (415), unknown route
    (404)."""
    client.request("POST", "/predict", 422, json={k: v for k, v in record.items() if k != "hour"})
    client.request("POST", "/predict", 422, json=dict(record, victim_age=-5))
    client.request("POST", "/predict", 422, json=dict(record, lum="dark"))
    client.request("POST", "/predict", 422, json=dict(record, colour=3))
    client.request("POST", "/predict/batch", 422, json={"records": []})
    client.request("POST", "/predict", 415, data="hour=17")
    client.request("GET", "/no/such/route", 404)
    client.request("GET", "/predict/nothing-here", 404)


def psi(prometheus, window):
    """feature -> current PSI over `window` (5m or 1h recording rule)."""
    return {r["metric"]["feature"]: float(r["value"][1])
            for r in prometheus.query(f"feature:model_psi:{window}")}


def wait_for_count(prometheus, expected):
    """Wait until Prometheus has scraped every request sent so far."""
    return prometheus.wait_for(
        lambda: prometheus.scalar("sum(http_requests_total)") == expected,
        what=f"sum(http_requests_total) == {expected} "
             f"(last: {prometheus.scalar('sum(http_requests_total)')})")


def empty_queries(prometheus, exprs, timeout=10.0):
    """The expressions still returning nothing after `timeout` s (rate() needs two scrapes of a
    series that appeared with the last requests, so each gets a short grace period)."""
    deadline = time.monotonic() + timeout
    pending = list(exprs)
    while pending and time.monotonic() < deadline:
        pending = [item for item in pending if not prometheus.query(item[1])]
        if pending:
            time.sleep(0.5)
    return pending


def kill_one_worker(live_server):
    """SIGKILL one gunicorn worker and wait until the master has replaced it."""
    before = live_server.worker_pids()
    assert len(before) == 2, before
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while True:
        now = live_server.worker_pids()
        if len(now) == 2 and before[0] not in now:
            return before[0], now
        assert time.monotonic() < deadline, f"worker {before[0]} not replaced: {now}"
        time.sleep(0.1)


def test_dashboard_alerts_and_counters_against_real_prometheus(live_server, prometheus,
                                                               figures):
    threshold = drift_threshold()
    started = time.time()
    # settled: the shared server's earlier requests all written by its workers
    baseline = metric_total(live_server.wait_for_metrics(lambda samples: True),
                            "http_requests_total")
    client = CountingClient(live_server.url)
    reference = client.request("GET", "/model", 200,
                               params={"include": "reference"}).json()["reference"]
    values = bin_values(reference)
    rng = np.random.default_rng(7)
    assert SHIFTED_FEATURE in reference

    # Phase A: traffic drawn from the training distribution, plus client errors.
    unshifted = records(200, reference, values, rng)
    answers = send_predictions(client, unshifted)
    assert {answer["prediction"] for answer in answers} == {0, 1}  # every confusion cell
    send_feedback(client, answers)
    send_bad_requests(client, unshifted[0])
    client.request("GET", "/health/ready", 200)
    wait_for_count(prometheus, baseline + client.sent)
    prometheus.wait_for(lambda: len(psi(prometheus, "5m")) == len(reference),
                        what="PSI of every feature")
    calm = psi(prometheus, "5m")
    worst = max(calm.items(), key=lambda kv: kv[1])
    figures(f"phase A: {client.sent} requests sent; worst 5m PSI {worst[0]}={worst[1]:.3f} "
            f"(alert threshold {threshold})")
    assert max(calm.values()) < threshold, sorted(calm.items(), key=lambda kv: -kv[1])[:5]

    # (a) the sketch's five queries, verbatim.
    assert not empty_queries(prometheus, SEED_PANELS.items())

    # (d) kill a worker mid-test; the aggregate must never go backwards.
    before_kill = {expr: prometheus.scalar(expr) for expr in MONOTONIC}
    killed_at = time.time()
    kill_one_worker(live_server)

    # Phase B: the same distribution except SHIFTED_FEATURE, three times the volume.
    # Their labels too: Prometheus scraped phase A's, so increase() counts all of these and
    # the quality rules pass their minimum-sample guards.
    send_feedback(client, send_predictions(
        client, records(600, reference, values, rng, shift=SHIFTED_FEATURE)))
    send_bad_requests(client, unshifted[1])
    wait_for_count(prometheus, baseline + client.sent)

    # (e) drift: the shifted feature crosses the alert threshold, the others stay below it.
    drifted = prometheus.wait_for(
        lambda: (lambda p: p if p.get(SHIFTED_FEATURE, 0) > threshold else None)(
            psi(prometheus, "5m")),
        what=f"PSI({SHIFTED_FEATURE}) > {threshold}")
    others = {f: v for f, v in drifted.items() if f != SHIFTED_FEATURE}
    figures(f"phase B (after a worker SIGKILL): {client.sent} requests sent in all; "
            f"PSI {SHIFTED_FEATURE} {calm[SHIFTED_FEATURE]:.3f} -> "
            f"{drifted[SHIFTED_FEATURE]:.3f}, worst other {max(others.values()):.3f}")
    assert max(others.values()) < threshold, sorted(others.items(), key=lambda kv: -kv[1])[:5]
    assert calm[SHIFTED_FEATURE] < threshold < drifted[SHIFTED_FEATURE]
    # the 1h rule (the alert's input) is evaluated after the 5m one in the same group: right
    # after the 5m value crosses, a query can still return the 1h value of the last round
    prometheus.wait_for(
        lambda: psi(prometheus, "1h").get(SHIFTED_FEATURE, 0) > threshold,
        what=f"1h PSI({SHIFTED_FEATURE}) > {threshold}")

    for expr, value in before_kill.items():
        assert prometheus.scalar(expr) >= value, expr
        series = prometheus.query_range(expr, started, time.time())[0]["values"]
        points = [float(v) for _, v in series]
        assert points == sorted(points), f"{expr} went backwards: {points}"
        assert any(t > killed_at for t, _ in series), "no scrape after the kill"
    assert prometheus.scalar("sum(resets(http_requests_total[5m]))") == 0

    # (b) every query of every panel of our dashboard returns data; those on the model card's
    # metrics once the service exports them (test_card_metrics_join_the_live_quality below).
    panel_exprs = [(title, substitute(expr, {"feature": SHIFTED_FEATURE}))
                   for title, expr in expressions(load_dashboard())]
    if not prometheus.query(CARD_METRIC):
        left_out = [title for title, expr in panel_exprs if needs_card(expr)]
        figures(f"{CARD_METRIC} not exported: {len(left_out)} card queries left out")
        panel_exprs = [(title, expr) for title, expr in panel_exprs if not needs_card(expr)]
    assert not empty_queries(prometheus, panel_exprs)

    # (c) the multiprocess aggregation is exact: every request we sent, no more, no less. A
    # last request is the marker: once it is counted, anything else would be counted too.
    client.request("GET", "/health/live", 200)
    wait_for_count(prometheus, baseline + client.sent)
    counted = prometheus.scalar("sum(http_requests_total)")
    figures(f"Prometheus sum(http_requests_total) {counted:.0f} = baseline {baseline:.0f} + "
            f"{client.sent} sent; {len(panel_exprs)} panel queries all returned data; "
            f"{time.time() - started:.1f}s")
    assert counted == baseline + client.sent
    assert time.time() - started < 90


def test_card_metrics_join_the_live_quality(live_server, request, figures):
    """The model card's test metrics reach the quality rules under the served model's version,
    the label the alerts compare live quality on."""
    card = requests.get(live_server.url + "/model", timeout=10).json()
    exported = requests.get(live_server.metrics_url, timeout=10).text
    if CARD_METRIC not in exported:
        pytest.skip(f"the service does not export {CARD_METRIC} yet (issue 13, item 6): the "
                    f"card panels and the quality alerts have nothing to compare with")
    prometheus = request.getfixturevalue("prometheus")
    version = card["version"]
    metrics = ("accuracy", "precision", "recall", "f1")

    def card_values(rule):
        return {r["metric"]["metric"]: float(r["value"][1]) for r in prometheus.query(
            f'job_model_version_metric:model_reference_metric:{rule}{{model_version="{version}"}}')}

    recorded = prometheus.wait_for(
        lambda: (lambda v: v if set(metrics) <= set(v) else None)(card_values("max")),
        what=f"the card's metrics of model {version} recorded")
    floor = prometheus.wait_for(lambda: card_values("minus_tolerance"),
                                what=f"the alert floor of model {version}")
    figures(f"model {version}: card {recorded}; alert floor {floor}")
    assert {m: recorded[m] for m in metrics} == {m: card["metrics"][m] for m in metrics}
    assert floor.keys() == {"accuracy", "f1"}
    assert all(abs(floor[m] - (card["metrics"][m] - alert_tolerance())) < 1e-9 for m in floor)
