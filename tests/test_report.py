"""`accident-api report`: the prediction log's window against the model's reference dataset,
the refusals and their messages, and the JSON results' documented fields."""
import json
import sys
from datetime import timedelta

import numpy as np
import pytest

from accident_api.cli import main
from accident_api.config import MODEL_EXTENSION
from accident_api.service import LOG_EXTENSION
from model.card import read_card, write_card
from model.feature_specs import FEATURES
from monitoring.prediction_log import PredictionLog, utc_now
from tests.fixtures.report import accident_records, accuracy_of, send_traffic

TOP_LEVEL = ["format", "generated_at", "evidently", "model", "reference", "window", "data_drift",
             "prediction_drift", "quality"]
FEATURE_FIELDS = {"kind", "method", "statistic", "score", "threshold", "drifted",
                  "unknown_values"}
# the prediction log counts into the service's metrics: they exist once an app was built
pytestmark = pytest.mark.usefixtures("app")
QUALITY_FIGURES = {"rows", "severe_share", "accuracy", "precision", "recall", "f1", "roc_auc",
                   "log_loss", "ece", "brier", "confusion_matrix", "reliability"}


def client_post(client):
    def post(path, body):
        response = client.post(path, json=body)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()
    return post


@pytest.fixture
def log_env(tmp_path, monkeypatch, trained_model_dir):
    """The report's environment: the service's DATA_DIR (its SQLite log) and MODEL_PATH."""
    data = tmp_path / "data"
    monkeypatch.setenv("DATA_DIR", str(data))
    monkeypatch.setenv("MODEL_PATH", str(trained_model_dir))
    monkeypatch.delenv("PREDICTION_LOG_URL", raising=False)
    return data


def log_rows(data_dir, versions: dict) -> None:
    """Write {model_version: rows} straight into the SQLite log in ``data_dir``."""
    log = PredictionLog(f"sqlite:///{data_dir / 'predictions.sqlite3'}", flush_seconds=3600)
    for version, count in versions.items():
        ids = [f"00000000-0000-4000-8000-{version[:6]}{i:06d}" for i in range(count)]
        log.add(ids, utc_now(), version, np.full(count, 0.25), np.zeros(count, dtype=int),
                np.full((count, len(FEATURES)), 1.0))
    log.stop()  # writes what is queued


def run_report(tmp_path, *args):
    out, results = tmp_path / "report.html", tmp_path / "results.json"
    code = main(["report", "--since", "1h", "--out", str(out), "--json", str(results), *args])
    return code, out, results


def test_a_window_without_predictions_writes_nothing(log_env, tmp_path, capsys):
    code, out, results = run_report(tmp_path)
    assert code == 1
    error = capsys.readouterr().err
    assert error.startswith("error: no prediction was served in this window (from ")
    assert error.rstrip().endswith("to now UTC): nothing to report")
    assert not out.exists() and not results.exists()


def test_a_window_of_two_model_versions_is_refused(log_env, tmp_path, capsys):
    log_rows(log_env, {"aaaaaaaaaaaa": 3, "bbbbbbbbbbbb": 2})
    code, out, _ = run_report(tmp_path)
    assert code == 2 and not out.exists()
    assert capsys.readouterr().err == (
        "error: the window mixes 2 model versions: aaaaaaaaaaaa (3 rows), bbbbbbbbbbbb (2 rows)."
        " A report compares one model with its own reference: choose one with --model-version "
        "(and --model, its directory), or narrow --since/--until to one version's time\n")


def test_predictions_of_another_model_than_the_reference_are_refused(log_env, tmp_path, capsys,
                                                                      trained_model_dir):
    log_rows(log_env, {"aaaaaaaaaaaa": 3, "bbbbbbbbbbbb": 2})
    code, _, _ = run_report(tmp_path, "--model-version", "bbbbbbbbbbbb")
    version = read_card(trained_model_dir)["version"]
    assert code == 2
    assert capsys.readouterr().err == (
        f"error: the window's predictions were served by model bbbbbbbbbbbb, but the model in "
        f"{trained_model_dir} is {version}: its reference dataset describes another model. "
        "Point --model (or MODEL_PATH) at the directory of model bbbbbbbbbbbb\n")


@pytest.fixture
def model_copy(trained_model_dir, tmp_path):
    import shutil

    return shutil.copytree(trained_model_dir, tmp_path / "model")


def test_a_model_without_a_reference_dataset_is_refused(log_env, tmp_path, capsys, model_copy):
    card = read_card(model_copy)
    del card["artifacts"]["reference"]
    write_card(model_copy, card)
    log_rows(log_env, {card["version"]: 3})
    code, _, _ = run_report(tmp_path, "--model", str(model_copy))
    assert code == 2
    assert "names no reference dataset (reference.parquet): it was trained before the offline " \
           "report existed; retrain it" in capsys.readouterr().err


def test_a_replaced_reference_file_is_refused(log_env, tmp_path, capsys, model_copy):
    card = read_card(model_copy)
    (model_copy / "reference.parquet").write_bytes(b"another model's reference")
    log_rows(log_env, {card["version"]: 3})
    assert run_report(tmp_path, "--model", str(model_copy))[0] == 2
    assert "reference.parquet has sha256" in capsys.readouterr().err


def test_without_evidently_the_error_names_the_extra(log_env, tmp_path, capsys, monkeypatch,
                                                     trained_model_dir):
    log_rows(log_env, {read_card(trained_model_dir)["version"]: 3})
    monkeypatch.setitem(sys.modules, "model.report.build", None)  # as if not installed
    assert run_report(tmp_path)[0] == 2
    assert "error: the report needs Evidently, the optional `report` extra: pip install -c " \
           "constraints.txt -e '.[report]'" in capsys.readouterr().err


@pytest.fixture
def served(make_app, log_env):
    """An app logging into ``log_env``, and a function sending it synthetic traffic."""
    def serve(accidents, seed, labelled_every=2, shift=None, **config):
        app = make_app(DATA_DIR=str(log_env), PREDICTION_LOG_FLUSH_MS=20, **config)
        card = app.extensions[MODEL_EXTENSION].predictor.card
        records, labels = accident_records(accidents, seed, card["imputation"], shift)
        traffic = send_traffic(client_post(app.test_client()), records, labels, labelled_every)
        app.extensions[LOG_EXTENSION].flush()
        return traffic, card
    return serve


@pytest.mark.slow
def test_the_report_of_served_traffic(served, tmp_path, capsys, trained_model_dir):
    """Drift of every feature with Evidently's default test for its type, quality of the
    labelled rows equal to their confusion counts, the reference's equal to the card's."""
    traffic, card = served(400, seed=11)
    code, out, results_path = run_report(tmp_path)
    assert code == 0, capsys.readouterr().err
    results = json.loads(results_path.read_text())
    assert list(results) == TOP_LEVEL and results["format"] == 1
    assert results["evidently"] == "0.7.23"
    assert results["model"] == {key: card[key] for key in ("name", "version", "trained_at",
                                                           "threshold")}
    assert results["reference"] == {key: card["artifacts"]["reference"][key]
                                    for key in ("file", "sha256", "rows")}
    window = results["window"]
    assert window["rows"] == window["rows_with_features"] == len(traffic.predictions)
    assert window["labelled_rows"] == len(traffic.labelled) == 200
    assert window["model_version"] == card["version"] and window["until"] is None
    drift = results["data_drift"]
    assert drift["computed"] is True and list(drift["by_feature"]) == list(FEATURES)
    for name, entry in drift["by_feature"].items():
        assert set(entry) == FEATURE_FIELDS, name
        assert entry["unknown_values"] == 0
        # a reference of at most 1,000 rows: Evidently's p-value tests (its documented choice)
        assert entry["statistic"] == "p_value" and entry["threshold"] == 0.05
        assert entry["drifted"] == (entry["score"] < 0.05), name
    assert drift["by_feature"]["dep"]["method"] == "chi-square p_value"
    assert drift["by_feature"]["lat"]["method"] == "K-S p_value"
    assert drift["drifted"] == [n for n, e in drift["by_feature"].items() if e["drifted"]]
    assert set(results["prediction_drift"]) == {"probability", "predicted"}
    quality = results["quality"]
    assert quality["computed"] is True and quality["min_labelled"] == 100
    current, reference = quality["current"], quality["reference"]
    assert set(current) == set(reference) == QUALITY_FIGURES
    assert current["confusion_matrix"] == traffic.cells
    assert current["accuracy"] == accuracy_of(traffic.cells)
    cells = traffic.cells
    assert current["precision"] == pytest.approx(cells["tp"] / (cells["tp"] + cells["fp"]))
    assert current["recall"] == pytest.approx(cells["tp"] / (cells["tp"] + cells["fn"]))
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc", "brier", "ece"):
        assert reference[metric] == pytest.approx(card["metrics"][metric], abs=1e-12), metric
    assert reference["rows"] == card["rows"]["test"]
    assert reference["reliability"] == card["calibration"]["test"]["after"]["reliability"]
    assert {test["status"] for test in quality["tests"]} <= {"SUCCESS", "FAIL"}
    page = out.read_text()
    assert page.lstrip().startswith("<!DOCTYPE html>")
    for title in ("accident-api offline report", "Data and prediction drift",
                  "Classification quality", "Calibration: expected calibration error"):
        assert title in page
    printed = capsys.readouterr().out
    assert printed.startswith(f"{len(traffic.predictions)} prediction(s) of model "
                              f"{card['version']}, 200 labelled: ")
    assert f"; accuracy {current['accuracy']:.3f} on the labelled rows (reference " \
           f"{reference['accuracy']:.3f}) -> {out} and {results_path}\n" in printed


def test_only_one_output_can_be_standard_output(capsys):
    assert main(["report", "--since", "1h", "--out", "-", "--json", "-"]) == 2
    assert capsys.readouterr().err == \
        "error: --out and --json cannot both be - (standard output)\n"


@pytest.mark.slow
def test_a_shifted_feature_is_flagged_and_the_page_can_go_to_stdout(served, tmp_path, capsys):
    served(400, seed=12, shift={"vma": 40})
    results = tmp_path / "results.json"
    assert main(["report", "--since", "1h", "--out", "-", "--json", str(results)]) == 0
    drift = json.loads(results.read_text())["data_drift"]
    assert "vma" in drift["drifted"] and drift["by_feature"]["vma"]["score"] < 1e-6
    printed = capsys.readouterr()
    assert printed.out.lstrip().startswith("<!DOCTYPE html>")
    assert printed.out.rstrip().endswith("</html>")
    # the summary goes to stderr, out of the page's way
    assert f"{drift['drifted_count']} of 28 features drifted (" in printed.err
    assert printed.err.rstrip().endswith(f"-> standard output and {results}")


@pytest.mark.slow
def test_too_few_labels_still_report_drift(served, tmp_path, capsys):
    traffic, _ = served(150, seed=13, labelled_every=10)
    assert run_report(tmp_path)[0] == 0
    results = json.loads((tmp_path / "results.json").read_text())
    reason = (f"only {len(traffic.labelled)} labelled prediction(s) in the window, fewer than "
              "100 (--min-labelled): classification quality is not reported; send more "
              "feedback (POST /feedback) or widen the window")
    assert results["quality"] == {"computed": False, "reason": reason, "min_labelled": 100,
                                  "current": None, "reference": None, "tests": []}
    assert results["data_drift"]["computed"] is True
    assert len(results["data_drift"]["by_feature"]) == len(FEATURES)
    assert f"warning: {reason}\n" in capsys.readouterr().err
    assert reason in (tmp_path / "report.html").read_text()
    # the same window with a lower bar reports quality
    assert run_report(tmp_path, "--min-labelled", "10")[0] == 0
    assert json.loads((tmp_path / "results.json").read_text())["quality"]["computed"] is True


@pytest.mark.slow
def test_a_log_without_features_reports_prediction_drift_and_quality(served, tmp_path, capsys):
    served(300, seed=14, PREDICTION_LOG_FEATURES=False)
    assert run_report(tmp_path, "--until", (utc_now() + timedelta(minutes=1)).isoformat())[0] == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["window"]["rows_with_features"] == 0
    drift = results["data_drift"]
    assert drift["computed"] is False and drift["by_feature"] == {}
    assert "PREDICTION_LOG_FEATURES=0" in drift["reason"]
    assert set(results["prediction_drift"]) == {"probability", "predicted"}
    assert results["quality"]["computed"] is True
    assert "no data drift (no features logged)" in capsys.readouterr().out
