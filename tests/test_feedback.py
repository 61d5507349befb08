"""POST /feedback: labels joined to their predictions, stored once, counted once; and the
expected outcomes every prediction adds."""
import os
import signal
import threading
import time

import pytest
import requests
import sqlalchemy as sa

from accident_api.schemas import SEED_RECORD
from monitoring.prediction_log import FEEDBACK, create_log_engine, new_prediction_ids
from tests.fixtures.service import metric_total
from tests.test_metrics import Delta


def predict(client, record=SEED_RECORD):
    response = client.post("/predict", json=record)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def cell(predicted: int, actual: int) -> str:
    return ("tp" if actual else "fp") if predicted else ("fn" if actual else "tn")


def test_a_label_is_recorded_once_and_counted_in_its_cell(client):
    answer = predict(client)
    actual = 1 - answer["prediction"]  # a mistake: fp or fn
    with Delta() as delta:
        first = client.post("/feedback", json={"prediction_id": answer["prediction_id"],
                                               "actual": "severe" if actual else "not_severe"})
        again = client.post("/feedback", json={"prediction_id": answer["prediction_id"],
                                               "actual": actual})
    assert first.status_code == 200 and again.status_code == 200
    assert first.get_json() == {
        "results": [{"prediction_id": answer["prediction_id"], "code": 200,
                     "status": "recorded", "actual": ["not_severe", "severe"][actual],
                     "recorded": None, "predicted": answer["label"],
                     "model_version": answer["model_version"]}],
        "summary": {"recorded": 1, "already_recorded": 0, "unknown": 0, "purged": 0,
                    "conflict": 0}}
    assert again.get_json()["results"][0]["status"] == "already_recorded"
    assert again.get_json()["results"][0]["recorded"] == ["not_severe", "severe"][actual]
    version = answer["model_version"]
    assert delta("model_feedback_total", outcome=cell(answer["prediction"], actual),
                 model_version=version) == 1
    assert sum(delta("model_feedback_total", outcome=o, model_version=version)
               for o in ("tp", "fp", "tn", "fn")) == 1
    assert delta("model_feedback_delay_seconds_count") == 1


def test_another_label_for_the_same_prediction_is_a_409_naming_the_recorded_one(client):
    answer = predict(client)
    client.post("/feedback", json={"prediction_id": answer["prediction_id"], "actual": 1})
    with Delta() as delta:
        response = client.post("/feedback", json={"prediction_id": answer["prediction_id"],
                                                  "actual": "not_severe"})
    assert response.status_code == 409
    assert response.get_json() == {
        "code": 409, "status": "Conflict",
        "message": f"prediction {answer['prediction_id']}: another label is already recorded "
                   f"for it: severe"}
    assert delta("model_feedback_rejected_total", reason="conflict") == 1


@pytest.mark.parametrize("prediction_id, reason, message", [
    # issued just now by nobody: waited for, then unknown
    (new_prediction_ids(1)[0], "unknown", "no such prediction in the log"),
    # a UUIDv7 of 1970: older than any retention
    ("01000000-0000-7000-8000-000000000000", "purged",
     "the prediction is older than PREDICTION_LOG_RETENTION_DAYS and was purged"),
])
def test_an_unknown_or_purged_prediction_is_a_404(client, prediction_id, reason, message):
    with Delta() as delta:
        response = client.post("/feedback", json={"prediction_id": prediction_id, "actual": 0})
    assert response.status_code == 404
    assert response.get_json()["message"] == f"prediction {prediction_id}: {message}"
    assert delta("model_feedback_rejected_total", reason=reason) == 1


def test_a_list_answers_each_label_with_a_summary(client):
    answers = [predict(client) for _ in range(3)]
    client.post("/feedback", json={"prediction_id": answers[2]["prediction_id"], "actual": 1})
    body = [{"prediction_id": answers[0]["prediction_id"], "actual": 0},
            {"prediction_id": answers[1]["prediction_id"], "actual": "severe"},
            {"prediction_id": answers[2]["prediction_id"], "actual": 0},
            {"prediction_id": "0" * 36, "actual": 1},
            {"prediction_id": answers[0]["prediction_id"], "actual": 0}]
    response = client.post("/feedback", json=body)
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [(r["code"], r["status"]) for r in results] == [
        (200, "recorded"), (200, "recorded"), (409, "conflict"), (404, "unknown"),
        (200, "already_recorded")]
    assert response.get_json()["summary"] == {"recorded": 2, "already_recorded": 1,
                                              "unknown": 1, "purged": 0, "conflict": 1}


@pytest.mark.parametrize("body, field, message", [
    ({"actual": 1}, "prediction_id", "Missing data for required field."),
    ({"prediction_id": "x" * 36, "actual": True}, "actual",
     'Must be 0, 1, "not_severe" or "severe".'),
    ({"prediction_id": "x" * 36, "actual": "fatal"}, "actual",
     'Must be 0, 1, "not_severe" or "severe".'),
    ({"prediction_id": "short", "actual": 1}, "prediction_id", "Length must be 36."),
    ({"prediction_id": "x" * 36, "actual": 1, "observed_at": "yesterday"}, "observed_at",
     "Not a valid datetime."),
    ({"prediction_id": "x" * 36, "actual": 1, "note": "x"}, "note", "Unknown field."),
])
def test_invalid_feedback_is_a_422_naming_the_field(client, body, field, message):
    with Delta() as delta:
        response = client.post("/feedback", json=body)
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"json": {field: [message]}}
    assert delta("model_feedback_rejected_total", reason="invalid") == 1


def test_a_list_over_the_cap_is_a_413(make_app):
    client = make_app(MAX_BATCH_SIZE=2).test_client()
    response = client.post("/feedback", json=[{"prediction_id": "x" * 36, "actual": 1}] * 3)
    assert response.status_code == 413 and "MAX_BATCH_SIZE=2" in response.get_json()["message"]


def test_without_a_prediction_log_predictions_still_answer_and_feedback_is_503(make_app):
    client = make_app(PREDICTION_LOG=False).test_client()
    answer = predict(client)
    response = client.post("/feedback", json={"prediction_id": answer["prediction_id"],
                                              "actual": 1})
    assert response.status_code == 503 and "PREDICTION_LOG=0" in response.get_json()["message"]


def test_each_prediction_adds_its_expected_confusion_cells(client):
    records = [{**SEED_RECORD, "victim_age": float(age), "vma": vma}
               for age, vma in ((5, 30), (40, 50), (80, 90), (100, 130))]
    with Delta() as delta:
        items = client.post("/predict/batch", json={"records": records}).get_json()["predictions"]
    version = items[0]["model_version"]
    severe = [item["probability"] for item in items if item["prediction"] == 1]
    not_severe = [item["probability"] for item in items if item["prediction"] == 0]
    expected = {"tp": sum(severe), "fp": sum(1 - p for p in severe),
                "fn": sum(not_severe), "tn": sum(1 - p for p in not_severe)}
    for outcome, value in expected.items():
        assert delta("model_expected_outcome_total", outcome=outcome,
                     model_version=version) == pytest.approx(value)


# --- real gunicorn: two workers, instances, the database going away -------------------------

def sidecar_feedback(server, version) -> float:
    return metric_total(server.samples(), "model_feedback_total", model_version=version)


@pytest.mark.integration
def test_the_same_label_sent_to_both_workers_at_once_is_counted_once(live_server_factory):
    server = live_server_factory()
    server.wait_for_workers(2)
    sent = [requests.post(f"{server.url}/predict", json=SEED_RECORD, timeout=10).json()
            for _ in range(20)]
    version = sent[0]["model_version"]
    codes = []

    def post(answer, actual):
        response = requests.post(f"{server.url}/feedback", timeout=10, json={
            "prediction_id": answer["prediction_id"], "actual": actual})
        codes.append((answer["prediction_id"], actual, response.status_code,
                      response.json().get("results", [{}])[0].get("status")))

    # 4 concurrent copies of each label, over 8 connections: both workers take some
    threads = [threading.Thread(target=post, args=(answer, 1)) for answer in sent
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    by_id = {}
    for prediction_id, _, code, status in codes:
        by_id.setdefault(prediction_id, []).append((code, status))
    assert all(sorted(results) == [(200, "already_recorded")] * 3 + [(200, "recorded")]
               for results in by_id.values()), by_id
    server.wait_for_metrics(lambda s: metric_total(s, "model_feedback_total",
                                                   model_version=version) == 20)
    conflict = requests.post(f"{server.url}/feedback", timeout=10, json={
        "prediction_id": sent[0]["prediction_id"], "actual": 0})
    assert conflict.status_code == 409 and conflict.json()["message"].endswith("severe")


@pytest.mark.integration
def test_feedback_right_after_its_prediction_and_a_sigkill_after_the_200(live_server_factory):
    server = live_server_factory()
    workers = server.wait_for_workers(2)
    # no delay: the prediction's row may still be in the other worker's queue
    for _ in range(20):
        answer = requests.post(f"{server.url}/predict", json=SEED_RECORD, timeout=10).json()
        response = requests.post(f"{server.url}/feedback", timeout=10, json={
            "prediction_id": answer["prediction_id"], "actual": 1})
        assert response.status_code == 200, response.text
        assert response.json()["results"][0]["status"] == "recorded"
    # the 200 means committed: SIGKILL both workers at once, the labels are in the log
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    server.wait_for_workers(2, exclude=workers)
    engine = create_log_engine(f"sqlite:///{server.env['DATA_DIR']}/predictions.sqlite3")
    with engine.connect() as connection:
        labels = connection.execute(sa.select(sa.func.count()).select_from(FEEDBACK)).scalar()
    assert labels == 20



@pytest.mark.integration
def test_the_sqlite_log_in_data_dir_outlives_a_restart(live_server_factory, tmp_path):
    data_dir = tmp_path / "data"
    first = live_server_factory(DATA_DIR=data_dir)
    ids = [requests.post(f"{first.url}/predict", json=SEED_RECORD, timeout=10).json()
           ["prediction_id"] for _ in range(3)]
    first.stop()  # graceful: the queued rows are written before the workers exit
    second = live_server_factory(DATA_DIR=data_dir)
    answer = requests.post(f"{second.url}/feedback", timeout=10,
                           json=[{"prediction_id": i, "actual": 1} for i in ids])
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["recorded"] * 3

@pytest.mark.integration
def test_two_instances_share_one_postgresql_log(live_server_factory, postgres_factory):
    database = postgres_factory()
    first = live_server_factory(PREDICTION_LOG_URL=database.url)
    second = live_server_factory(PREDICTION_LOG_URL=database.url)
    answers = [requests.post(f"{first.url}/predict", json=SEED_RECORD, timeout=10).json()
               for _ in range(10)]
    version = answers[0]["model_version"]
    for answer in answers:  # every label to the other instance
        response = requests.post(f"{second.url}/feedback", timeout=10, json={
            "prediction_id": answer["prediction_id"], "actual": 0})
        assert response.status_code == 200 and \
            response.json()["results"][0]["status"] == "recorded", response.text
    again = requests.post(f"{first.url}/feedback", timeout=10, json=[
        {"prediction_id": answer["prediction_id"], "actual": 0} for answer in answers])
    assert again.json()["summary"]["already_recorded"] == 10
    second.wait_for_metrics(lambda s: metric_total(s, "model_feedback_total",
                                                   model_version=version) == 10)
    first.wait_for_metrics(lambda s: metric_total(s, "model_feedback_total",
                                                  model_version=version) == 0)


@pytest.mark.integration
def test_postgresql_stopped_mid_run_costs_log_rows_never_a_prediction(live_server_factory,
                                                                      postgres_factory):
    database = postgres_factory()
    server = live_server_factory(PREDICTION_LOG_URL=database.url)

    def send(n):
        for _ in range(n):
            assert requests.post(f"{server.url}/predict", json=SEED_RECORD,
                                 timeout=10).status_code == 200

    send(10)
    server.wait_for_metrics(lambda s: metric_total(s, "prediction_log_written_total") == 10)
    database.stop()
    started = time.monotonic()
    send(10)  # every prediction still answers, at once
    assert time.monotonic() - started < 5
    server.wait_for_metrics(lambda s: metric_total(
        s, "prediction_log_dropped_total", reason="write_failed") == 10, timeout=30)
    database.start()
    send(10)
    server.wait_for_metrics(lambda s: metric_total(s, "prediction_log_written_total") == 20,
                            timeout=30)
    assert "prediction log: " in server.logs() and "dropped" in server.logs()


def test_the_labelled_log_exports_as_csv_and_parquet(make_app, tmp_path, monkeypatch):
    import pandas as pd

    from accident_api.cli import main

    data = tmp_path / "export-data"
    app = make_app(DATA_DIR=str(data), PREDICTION_LOG_FLUSH_MS=20)
    client = app.test_client()
    answers = [predict(client, {**SEED_RECORD, "hour": hour}) for hour in (1, 2, 3)]
    for answer, actual in zip(answers[:2], ("severe", "not_severe")):
        assert client.post("/feedback", json={"prediction_id": answer["prediction_id"],
                                              "actual": actual}).status_code == 200
    monkeypatch.setenv("DATA_DIR", str(data))
    assert main(["predictions", "export", "--since", "1h", "--format", "csv",
                 "--out", str(tmp_path / "all.csv")]) == 0
    assert main(["predictions", "export", "--since", "1h", "--labelled", "--format", "parquet",
                 "--out", str(tmp_path / "labelled.parquet")]) == 0
    every = pd.read_csv(tmp_path / "all.csv")
    labelled = pd.read_parquet(tmp_path / "labelled.parquet")
    assert list(every["prediction_id"]) == [a["prediction_id"] for a in answers]
    assert list(every["hour"]) == [1.0, 2.0, 3.0] and every["actual"].isna().tolist() == [
        False, False, True]
    assert list(labelled["prediction_id"]) == [a["prediction_id"] for a in answers[:2]]
    assert list(labelled["actual"]) == [1, 0]
    assert list(labelled["probability"]) == [a["probability"] for a in answers[:2]]


def test_an_export_window_is_a_duration_or_an_iso_time():
    import argparse

    from accident_api.cli import moment

    assert moment("2026-12-01T10:00:00+01:00").isoformat() == "2026-12-01T09:00:00"
    with pytest.raises(argparse.ArgumentTypeError, match="neither a duration"):
        moment("last week")
