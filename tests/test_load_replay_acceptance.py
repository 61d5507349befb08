"""Acceptance of the replay and feedback loop against the real service: a model trained here
(quality_model_dir: 20,000 synthetic accidents, seed 42) served by gunicorn with 2 workers,
2,000 held-out synthetic accidents (seed 2024) replayed by `python load/run.py --replay` as a
user runs it, their true outcomes POSTed back by its --feedback, and a real Prometheus
scraping the sidecar every second with the project's rule files.

- Prometheus's realised tp/fp/tn/fn (the raw model_feedback_total values, summed over the
  workers: exact, where increase() extrapolates to its range's edges; docs/monitoring.md)
  are exactly scikit-learn's confusion_matrix of the predictions the tool recorded
  (--answers) and the labels it sent;
- without drift, the estimated accuracy, (tp + tn) / all of model_expected_outcome_total's
  raw values (the mean over the predictions of p when predicted severe, else 1 - p), is
  within 0.03 of the realised one over the 2,000 labelled predictions;
- with --concept-drift, realised F1 falls by 0.1 or more below the card's and below the same
  predictions' F1 on their undrifted outcomes, while every feature's PSI
  (feature:model_psi:5m) stays under 0.1 and the estimate stays where the undrifted labels
  put accuracy; ModelRealisedQualityLow's condition holds in Prometheus (the alert is
  pending; firing after its 30 min is proven by promtool:
  prometheus/rules/tests/model_quality_test.yml), ModelEstimatedAccuracyLow's does not.
"""
from urllib.parse import urlsplit

import pytest
import requests
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from model import synth
from tests.fixtures.observability import API_JOB, start_prometheus, stop_prometheus
from tests.fixtures.report import replay as run_replay

pytestmark = [pytest.mark.integration, pytest.mark.slow]
HELD_OUT, HELD_OUT_SEED = 2000, 2024    # the model's own accidents are seed 42
RATE = 150                              # predictions/s; the labels come on top
CELLS = ("tp", "fp", "tn", "fn")
FLOOR = "job_model_version_metric:model_reference_metric:minus_tolerance"


@pytest.fixture(scope="module")
def held_out_dir(tmp_path_factory):
    """2,000 synthetic accidents the model never saw, as BAAC 2021 files."""
    raw = tmp_path_factory.mktemp("held-out")
    synth.write(raw, HELD_OUT, seed=HELD_OUT_SEED)
    return raw


@pytest.fixture
def observed(live_server_factory, quality_model_dir, tmp_path):
    """A fresh gunicorn (2 workers) serving the quality model, and a Prometheus scraping it."""
    server = live_server_factory(model_dir=quality_model_dir)
    (tmp_path / "prom").mkdir()
    prometheus = start_prometheus(urlsplit(server.metrics_url).netloc, tmp_path / "prom")
    try:
        prometheus.wait_for(lambda: prometheus.scalar(f'up{{job="{API_JOB}"}}') == 1,
                            timeout=60, what="a first scrape of the API's metrics port")
        yield server, prometheus
    finally:
        stop_prometheus(prometheus)


def replay(server, held_out_dir, tmp_path, *args) -> tuple[dict, list[dict]]:
    """`python load/run.py --replay` once through the held-out accidents: report, answers."""
    return run_replay(server.url, held_out_dir, tmp_path, *args, rate=RATE, accidents=HELD_OUT)


def counted(prometheus, metric: str, total: float) -> dict:
    """{outcome: raw value} of `metric` summed over the workers, once they add up to total."""
    def settled():
        cells = {sample["metric"]["outcome"]: float(sample["value"][1])
                 for sample in prometheus.query(f"sum by (outcome) ({metric})")}
        return cells if abs(sum(cells.values()) - total) < 1e-6 else None
    return prometheus.wait_for(settled, timeout=60, what=f"{total:g} in {metric}")


def sklearn_cells(actual, predicted) -> dict:
    tn, fp, fn, tp = confusion_matrix(actual, predicted, labels=[0, 1]).ravel()
    return {"tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)}


def accuracy(cells: dict) -> float:
    return (cells["tp"] + cells["tn"]) / sum(cells.values())


def f1(cells: dict) -> float:
    return 2 * cells["tp"] / (2 * cells["tp"] + cells["fp"] + cells["fn"])


def worst_psi(prometheus) -> tuple[str, float]:
    """The feature with the highest 5 min PSI, once every feature has one."""
    def all_features():
        result = prometheus.query("feature:model_psi:5m")
        return result if len(result) == 28 else None
    result = prometheus.wait_for(all_features, timeout=60, what="a PSI for each feature")
    worst = max(result, key=lambda sample: float(sample["value"][1]))
    return worst["metric"]["feature"], float(worst["value"][1])


def active_alerts(prometheus) -> set:
    """(alertname, metric label) of every pending or firing alert."""
    answer = requests.get(prometheus.url + "/api/v1/alerts", timeout=10).json()
    return {(alert["labels"]["alertname"], alert["labels"].get("metric"))
            for alert in answer["data"]["alerts"]}


def card_metric(prometheus, metric: str) -> float:
    return prometheus.scalar(f'model_reference_metric{{metric="{metric}"}}')


def test_replayed_labels_count_in_prometheus_exactly_as_sklearn_computes(
        observed, held_out_dir, tmp_path, figures):
    server, prometheus = observed
    report, answers = replay(server, held_out_dir, tmp_path, "--feedback", "1,0")
    labelled = [row for row in answers if row["feedback_result"] == "recorded"]
    assert len(labelled) == report["feedback"]["as_expected"] == HELD_OUT
    expected = sklearn_cells([row["severe"] for row in labelled],
                             [row["prediction"] for row in labelled])
    realised = counted(prometheus, "model_feedback_total", len(labelled))
    assert realised == expected == report["feedback"]["confusion"]

    estimated = counted(prometheus, "model_expected_outcome_total", HELD_OUT)
    # the counter is the served probabilities' expected cells, prediction by prediction
    promised = sum(row["probability"] if row["prediction"] else 1 - row["probability"]
                   for row in answers) / HELD_OUT
    assert accuracy(estimated) == pytest.approx(promised, abs=1e-9)
    assert abs(accuracy(estimated) - accuracy(realised)) <= 0.03
    feature, psi = worst_psi(prometheus)
    assert psi < 0.1, (feature, psi)
    figures(f"realised {realised} = sklearn {expected}; accuracy estimated "
            f"{accuracy(estimated):.4f} vs realised {accuracy(realised):.4f} over "
            f"{len(labelled)} labels; F1 {f1(realised):.4f} (card "
            f"{card_metric(prometheus, 'f1'):.4f}); worst PSI {feature} {psi:.4f}")


def test_concept_drift_lowers_realised_quality_while_psi_and_the_estimate_stay_calm(
        observed, held_out_dir, tmp_path, figures):
    server, prometheus = observed
    report, answers = replay(server, held_out_dir, tmp_path, "--feedback", "0.5,1",
                             "--concept-drift")
    assert report["replay"]["concept_drift"]["segment"] == "vma >= 80"
    labelled = [row for row in answers if row["feedback_result"] == "recorded"]
    assert len(labelled) == report["feedback"]["as_expected"] >= 200    # the 1 d guard
    predicted = [row["prediction"] for row in labelled]
    realised = counted(prometheus, "model_feedback_total", len(labelled))
    assert realised == sklearn_cells([row["severe"] for row in labelled], predicted)

    # the same predictions judged on their undrifted outcomes, and the card's promise
    undrifted = [row["severe"] ^ row["flipped"] for row in labelled]
    card_f1 = card_metric(prometheus, "f1")
    assert f1_score(undrifted, predicted) - f1(realised) >= 0.1
    assert card_f1 - f1(realised) >= 0.1

    # inputs as in training, and an estimate that cannot see the change
    feature, psi = worst_psi(prometheus)
    assert psi < 0.1, (feature, psi)
    estimated = counted(prometheus, "model_expected_outcome_total", HELD_OUT)
    truth = accuracy_score([row["severe"] ^ row["flipped"] for row in answers],
                           [row["prediction"] for row in answers])
    assert abs(accuracy(estimated) - truth) <= 0.03

    # ModelRealisedQualityLow's condition holds (pending: it fires after 30 min, as
    # promtool shows), evaluated on the recorded 1 d ratio against the card's floor
    prometheus.wait_for(lambda: ("ModelRealisedQualityLow", "f1") in active_alerts(prometheus),
                        timeout=60, what="ModelRealisedQualityLow pending for f1")
    alerts = active_alerts(prometheus)
    recorded_f1 = prometheus.scalar("job_model_version:model_feedback_f1:ratio_1d")
    floor_f1 = prometheus.scalar(f'{FLOOR}{{metric="f1"}}')
    assert recorded_f1 < floor_f1
    # the same evaluation found the estimate above its floor: no estimated-accuracy alert
    assert not any(name == "ModelEstimatedAccuracyLow" for name, _ in alerts), alerts
    assert prometheus.scalar("job_model_version:model_expected_accuracy:ratio_1h") >= \
        prometheus.scalar(f'{FLOOR}{{metric="accuracy"}}')
    figures(f"concept drift ({report['replay']['concept_drift']['accidents']} accidents "
            f"flipped): realised F1 {f1(realised):.4f} (recorded 1d {recorded_f1:.4f}, floor "
            f"{floor_f1:.4f}) vs undrifted {f1_score(undrifted, predicted):.4f} and card "
            f"{card_f1:.4f}; accuracy realised {accuracy(realised):.4f}, estimated "
            f"{accuracy(estimated):.4f}, undrifted {truth:.4f}; worst PSI {feature} {psi:.4f}; "
            f"alerts {sorted(alerts)}")
