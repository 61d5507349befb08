"""The load generator against the real service (gunicorn on 127.0.0.1, the `live_server`
fixture): its report must agree with the server's own counters from the sidecar exporter."""
import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration
RATE, DURATION, BATCH = 40, 4, 10


def counts(samples: dict, metric: str, *keys: str) -> Counter:
    """{label values of `keys`: sum} of `metric` in a `LiveServer.samples()` dict."""
    totals = Counter()
    for (name, labels), value in samples.items():
        if name == metric:
            labels = dict(labels)
            totals[tuple(labels[key] for key in keys)] += value
    return totals


def run_load(server, tmp_path, *args) -> tuple[int, dict, str]:
    """Run `python load/run.py` as a user would; returns exit code, JSON report, stdout."""
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "load/run.py", "--url", server.url, "--json", str(report),
         "--quiet", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert report.exists(), done.stderr
    return done.returncode, json.loads(report.read_text()), done.stdout


def test_report_matches_the_servers_counters(live_server, tmp_path, figures):
    start = live_server.wait_for_metrics(lambda samples: True)  # earlier tests' counts written
    before = counts(start, "http_requests_total", "endpoint", "status")
    predicted_before = counts(start, "api_predict_total", "outcome")
    records_before = counts(start, "model_predictions_total", "label")
    bins_before = counts(start, "model_feature_bin_total", "feature", "bin")
    code, report, stdout = run_load(
        live_server, tmp_path, "--rate", str(RATE), "--duration", str(DURATION),
        "--batch-size", str(BATCH), "--max-error-rate", "0")
    # every request the report counts (and its one GET /model) written by the workers
    expected = sum(before.values()) + report["completed"] + 1
    end = live_server.wait_for_metrics(
        lambda samples: sum(counts(samples, "http_requests_total").values()) == expected)
    after = counts(end, "http_requests_total", "endpoint", "status")
    delta = {key: after[key] - before[key] for key in after if after[key] != before[key]}
    bins = counts(end, "model_feature_bin_total", "feature", "bin")
    bins = {key: bins[key] - bins_before[key] for key in bins}
    for line in stdout.splitlines():
        figures(line)

    assert code == 0
    # requests sent = requests the server counted, status by status (+ the one GET /model)
    assert report["sent"] == report["completed"] == RATE * DURATION
    assert report["dropped"] == 0 and report["failed"] == 0 and report["errors"]["count"] == 0
    by_status = Counter()
    for (endpoint, status), value in delta.items():
        by_status[status] += value
    assert by_status.pop("200") - 1 == report["by_status"].pop("200")
    assert dict(by_status) == report["by_status"]
    assert delta[("meta.model", "200")] == 1
    kinds = report["by_kind"]
    assert delta[("predictions.predict", "200")] == kinds["valid"]["200"]
    assert delta[("predictions.predict_batch", "200")] == kinds["batch"]["200"]
    assert delta[("unmatched", "404")] == kinds["notfound"]["404"]
    # api_predict_total counts prediction requests; every record of a successful request was
    # predicted exactly once (model_predictions_total)
    predicted = counts(end, "api_predict_total", "outcome")
    assert predicted[("success",)] - predicted_before[("success",)] == \
        kinds["valid"]["200"] + kinds["batch"]["200"]
    records = counts(end, "model_predictions_total", "label")
    assert sum(records.values()) - sum(records_before.values()) == \
        kinds["valid"]["200"] + BATCH * kinds["batch"]["200"]

    # the mix, within one request of the target, and each client-error flavour answered
    total = report["sent"]
    shares = {"valid": 0.8, "invalid": 0.1, "notfound": 0.05, "batch": 0.05}
    sent = Counter()
    for kind, statuses in kinds.items():
        sent[kind.split(":")[0]] += sum(statuses.values())
    for kind, share in shares.items():
        assert abs(sent[kind] - share * total) <= max(1, 0.02 * total), (kind, sent)
    assert {kind: set(statuses) for kind, statuses in kinds.items()
            if kind.startswith("invalid:")} == {
        "invalid:out_of_range": {"422"}, "invalid:missing_field": {"422"},
        "invalid:unknown_field": {"422"}, "invalid:malformed_json": {"400"},
        "invalid:wrong_content_type": {"415"}, "invalid:wrong_method": {"405"},
        "invalid:batch_over_cap": {"413"}}

    # the offered rate was held (modest rate: the server is not the bottleneck)
    assert report["achieved_rate"] == pytest.approx(RATE, rel=0.05)
    assert report["send_window_s"] == pytest.approx(DURATION, rel=0.05)
    assert report["elapsed_s"] < DURATION + 3
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]

    # undrifted traffic looks like the training data: no feature near the drift alert's PSI
    worst = max(psi(end, bins).items(), key=lambda item: item[1])
    assert worst[1] < 0.25, worst


def psi(samples: dict, served: dict) -> dict:
    """PSI per feature of the served bin counts against the card's reference ratios, the
    way the recording rule computes it (shares clamped at 1e-4)."""
    reference = counts(samples, "model_feature_reference_ratio", "feature", "bin")
    result = Counter()
    for feature in {feature for feature, _ in reference}:
        total = sum(n for (f, _), n in served.items() if f == feature)
        for (f, bin_), q in reference.items():
            if f == feature:
                p = max(served.get((f, bin_), 0) / total, 1e-4)
                q = max(q, 1e-4)
                result[feature] += (p - q) * math.log(p / q)
    return result


def test_drift_moves_served_values_into_the_shifted_bin(live_server, tmp_path):
    start = live_server.wait_for_metrics(lambda samples: True)
    before = counts(start, "model_feature_bin_total", "feature", "bin")
    code, report, _ = run_load(live_server, tmp_path, "--rate", "40", "--duration", "1",
                               "--mix", "valid=1", "--drift", "vma=1000")
    served = sum(counts(start, "model_predictions_total").values()) + 40
    after = counts(live_server.wait_for_metrics(
        lambda samples: sum(counts(samples, "model_predictions_total").values()) == served),
        "model_feature_bin_total", "feature", "bin")
    vma = {b: after[(f, b)] - before[(f, b)] for f, b in after if f == "vma"}
    assert code == 0 and report["by_status"] == {"200": 40}
    top = max(vma, key=int)
    assert vma[top] == 40 and sum(vma.values()) == 40, vma


def test_exit_code_gates_on_p99_and_error_rate(live_server, tmp_path):
    code, report, stdout = run_load(live_server, tmp_path, "--rate", "20", "--duration", "1",
                                    "--max-p99", "0.001", "--max-error-rate", "0")
    assert code == 1
    assert report["gates"]["max_p99_ms"]["passed"] is False
    assert report["gates"]["max_error_rate"]["passed"] is True
    assert "gate max_p99_ms: FAIL" in stdout
    code, report, _ = run_load(live_server, tmp_path, "--rate", "20", "--duration", "1",
                               "--max-p99", "60000", "--max-error-rate", "0")
    assert code == 0 and all(gate["passed"] for gate in report["gates"].values())
