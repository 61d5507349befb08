"""/predict and /predict/batch through the Flask test client: results, unknowns, every error."""
import json
import math
import shutil
import time
import uuid
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from accident_api.config import MODEL_EXTENSION
from accident_api.schemas import SEED_RECORD
from accident_api.service import LOG_EXTENSION, export_model_info
from model import baac, card as card_module, train
from model.features import FEATURES, build_features
from model.serving import load_model
from monitoring.drift import export_reference_ratios
from monitoring.prediction_log import utc_now
from tests.fixtures.service import without_id


def test_seed_payload_is_predicted(client):
    response = client.post("/predict", json=SEED_RECORD)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"prediction", "probability", "label", "model_version", "prediction_id",
                         "imputed"}
    assert uuid.UUID(body["prediction_id"]).version == 7
    assert body["imputed"] == []
    assert body["prediction"] in (0, 1) and 0.0 <= body["probability"] <= 1.0
    assert body["label"] == ("severe" if body["prediction"] == 1 else "not_severe")
    assert body["prediction"] == int(body["probability"] >= 0.5)


def test_trailing_slash_is_served_without_redirect(client):
    plain = client.post("/predict", json=SEED_RECORD)
    slash = client.post("/predict/", json=SEED_RECORD)
    assert slash.status_code == 200
    assert without_id(slash.get_json()) == without_id(plain.get_json())
    assert slash.get_json()["prediction_id"] != plain.get_json()["prediction_id"]


def _varied_records(n):
    return [{**SEED_RECORD, "victim_age": 5 + 9 * i, "vma": 30 + 10 * (i % 10), "hour": i % 24}
            for i in range(n)]


def test_batch_answers_each_record_in_order(client):
    records = _varied_records(12)
    response = client.post("/predict/batch", json={"records": records})
    assert response.status_code == 200
    items = response.get_json()["predictions"]
    singles = [client.post("/predict", json=r).get_json() for r in records]
    assert [without_id(item) for item in items] == [without_id(item) for item in singles]
    assert len({item["prediction_id"] for item in items + singles}) == 2 * len(records)


def fill_values(app) -> dict:
    return app.extensions[MODEL_EXTENSION].predictor.card["imputation"]


def test_unknowns_are_imputed_with_the_card_values_and_named(app, client):
    fill = fill_values(app)
    known = {**SEED_RECORD, "vma": fill["vma"], "atm": fill["atm"], "lat": fill["lat"]}
    unknown = {**SEED_RECORD, "vma": None, "atm": -1, "lat": None}
    expected = client.post("/predict", json=known).get_json()
    body = client.post("/predict", json=unknown).get_json()
    assert without_id(body) == {**without_id(expected), "imputed": ["vma", "atm", "lat"]}


def test_batch_items_name_their_own_imputed_fields(client):
    records = [SEED_RECORD, {**SEED_RECORD, "vma": -1}, {**SEED_RECORD, "catu": None, "atm": None}]
    response = client.post("/predict/batch", json={"records": records})
    assert response.status_code == 200
    items = response.get_json()["predictions"]
    assert [item["imputed"] for item in items] == [[], ["vma"], ["catu", "atm"]]
    singles = [client.post("/predict", json=record).get_json() for record in records]
    assert [without_id(item) for item in items] == [without_id(item) for item in singles]


def test_the_prediction_log_keeps_the_inputs_as_sent_unknowns_as_null(app, client):
    since = utc_now() - timedelta(seconds=1)  # not the id's time: uuid7 ids can run ahead
    answer = client.post("/predict", json={**SEED_RECORD, "vma": None, "atm": -1}).get_json()
    log, deadline = app.extensions[LOG_EXTENSION], time.monotonic() + 10
    while True:  # the log's own flush thread may be writing the row right now: wait for it
        log.flush()
        logged = log.read(since=since)
        logged = logged[logged["prediction_id"] == answer["prediction_id"]]
        if len(logged) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    row = logged.iloc[0]
    assert row[["vma", "atm"]].isna().all()  # NULL, not the fill values
    assert (row["lat"], row["hour"]) == (SEED_RECORD["lat"], SEED_RECORD["hour"])


def test_a_missing_key_is_still_422_beside_an_unknown(client):
    record = {k: v for k, v in SEED_RECORD.items() if k != "vma"}
    response = client.post("/predict", json={**record, "atm": None, "vmax": 50})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"json": {"vma": ["Missing data for required field."],
                                                      "vmax": ["Unknown field."]}}


def test_a_model_without_imputation_values_is_refused_at_load(make_app, trained_model_dir,
                                                              tmp_path):
    model = shutil.copytree(trained_model_dir, tmp_path / "model")
    card = card_module.read_card(model)
    del card["imputation"]
    card_module.write_card(model, card)
    client = make_app(MODEL_PATH=str(model)).test_client()
    response = client.post("/predict", json=SEED_RECORD)
    assert response.status_code == 503
    message = response.get_json()["message"]
    assert "lacks ['imputation']" in message and "retrain the model" in message


@pytest.fixture
def real_sample_app(baac_sample_dir, tmp_path, app, make_app):
    """An app serving a small model trained on the real 2021 sample, and its card.

    Reference ratios and model_info are process-wide gauges: afterwards the session model's
    are exported again, as a model swap back would.
    """
    card = train.train_from_raw(baac_sample_dir, tmp_path, log=lambda message: None,
                                hyperparameters={"n_estimators": 10, "max_depth": 6,
                                                 "min_samples_leaf": 5})
    real = make_app(MODEL_PATH=str(tmp_path))
    yield real, card
    export_model_info(real.extensions[MODEL_EXTENSION].predictor, served=False)
    export_reference_ratios(app.extensions[MODEL_EXTENSION].predictor.card["reference"])


def imputed_count(feature: str) -> float:
    return REGISTRY.get_sample_value("model_input_imputed_total", {"feature": feature}) or 0.0


def test_every_real_accident_is_predicted_with_its_unknowns_sent_as_null(real_sample_app,
                                                                         baac_sample_dir):
    """Each accident's features before imputation (NaN where unknown, as build_features gives
    them) are posted with null for NaN; the answer equals the offline prediction of the row
    imputed with the card's fill values (pandas' fillna, not the served code path)."""
    app, card = real_sample_app
    frame, _, _ = build_features(baac.read_raw(baac_sample_dir, 2021))
    offline = load_model(app.config["MODEL_PATH"]).predict(
        frame.fillna(card["imputation"]).to_numpy("float64"))
    records = [{name: None if math.isnan(value) else value for name, value in row.items()}
               for _, row in frame.iterrows()]
    before = {name: imputed_count(name) for name in FEATURES}
    client = app.test_client()
    answers = [client.post("/predict", json=record) for record in records]
    assert [answer.status_code for answer in answers] == [200] * len(records)
    bodies = [answer.get_json() for answer in answers]
    assert [(body["prediction"], body["probability"]) for body in bodies] == list(
        zip(offline.classes.tolist(), offline.probabilities.tolist()))
    assert [body["imputed"] for body in bodies] == [
        [name for name in FEATURES if record[name] is None] for record in records]
    with_unknown = [i for i, body in enumerate(bodies) if body["imputed"]]
    assert (len(records), len(with_unknown)) == (1120, 27)  # the count
    missing = frame.isna().sum()
    assert {name: imputed_count(name) - before[name] for name in FEATURES} == missing.to_dict()
    assert missing[missing > 0].to_dict() == {"vma": 23, "atm": 6}  # raw -1: BAAC's "not given"
    # the same accidents with BAAC's -1 instead of null, in one batch
    coded = [{name: -1 if value is None else value for name, value in records[i].items()}
             for i in with_unknown]
    batch = client.post("/predict/batch", json={"records": coded}).get_json()["predictions"]
    assert [without_id(item) for item in batch] == [without_id(bodies[i]) for i in with_unknown]


def test_batch_over_the_cap_is_413_naming_the_cap(make_app):
    client = make_app(MAX_BATCH_SIZE=3).test_client()
    response = client.post("/predict/batch", json={"records": _varied_records(4)})
    assert response.status_code == 413
    body = response.get_json()
    assert body["code"] == 413 and body["status"] == "Request Entity Too Large"
    assert "MAX_BATCH_SIZE=3" in body["message"]
    assert client.post("/predict/batch", json={"records": _varied_records(3)}).status_code == 200


def test_body_over_the_size_limit_is_413(make_app):
    client = make_app(MAX_CONTENT_LENGTH=2048).test_client()
    response = client.post("/predict/batch", json={"records": _varied_records(10)})
    assert response.status_code == 413
    assert response.get_json()["code"] == 413


def test_invalid_record_is_422_in_flask_smorest_format(client):
    response = client.post("/predict", json={**SEED_RECORD, "catu": 9, "vma": 500, "extra": 1})
    assert response.status_code == 422
    assert response.get_json() == {
        "code": 422, "status": "Unprocessable Entity",
        "message": "The request was well-formed but was unable to be followed due to semantic "
                   "errors.",
        "errors": {"json": {"catu": ["Must be one of the codes 1, 2, 3."],
                            "vma": ["Must be between 1 and 130."],
                            "extra": ["Unknown field."]}}}


def test_invalid_batch_record_is_named_by_index(client):
    records = [SEED_RECORD, {k: v for k, v in SEED_RECORD.items() if k != "hour"}]
    response = client.post("/predict/batch", json={"records": records})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "json": {"records": {"1": {"hour": ["Missing data for required field."]}}}}


@pytest.mark.parametrize("body, errors", [
    ({"records": []}, {"json": {"records": ["Send at least one record (or tensor)."]}}),
    ({}, {"json": {"records": ["Missing data for required field."]}}),
    ({"records": "x"}, {"json": {"records": ["Not a valid list."]}}),
])
def test_batch_shape_errors(client, body, errors):
    response = client.post("/predict/batch", json=body)
    assert response.status_code == 422 and response.get_json()["errors"] == errors


@pytest.mark.parametrize("payload", [[1, 2], "text", 3, None])
def test_non_object_json_is_422(client, payload):
    response = client.post("/predict", data=json.dumps(payload), content_type="application/json")
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"json": {"_schema": ["Invalid input type."]}}


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
def test_malformed_json_is_400(client, path):
    response = client.post(path, data='{"catu": ', content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"code": 400, "status": "Bad Request",
                                   "message": "Invalid JSON body.",
                                   "errors": {"json": ["Invalid JSON body."]}}


# json.loads raises RecursionError / ValueError (not JSONDecodeError) on these: still a 400
HOSTILE_JSON = {
    "nested_lists": "[" * 100_000 + "]" * 100_000,
    "nested_objects": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "integer_over_4300_digits": '{"lat": ' + "1" * 5000 + "}",
}


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
@pytest.mark.parametrize("body", HOSTILE_JSON.values(), ids=HOSTILE_JSON.keys())
def test_json_that_json_loads_cannot_decode_is_400(client, path, body):
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"code": 400, "status": "Bad Request",
                                   "message": "Invalid JSON body.",
                                   "errors": {"json": ["Invalid JSON body."]}}


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
def test_integer_too_large_for_a_float_feature_is_422_naming_it(client, path):
    record = json.dumps(SEED_RECORD).replace('"lat": 48.6', '"lat": 1' + "0" * 400)
    body = record if path == "/predict" else f'{{"records": [{record}]}}'
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 422
    errors = {"lat": ["Number too large: it does not fit in a float."]}
    assert response.get_json()["errors"] == {
        "json": errors if path == "/predict" else {"records": {"0": errors}}}


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(client, content_type):
    response = client.post("/predict", data=json.dumps(SEED_RECORD), content_type=content_type)
    assert response.status_code == 415
    assert response.get_json() == {"code": 415, "status": "Unsupported Media Type",
                                   "message": "Content-Type must be application/json."}


def test_unknown_path_is_404_json(client):
    response = client.get("/nope")
    assert response.status_code == 404 and response.is_json
    assert response.get_json()["code"] == 404 and response.get_json()["status"] == "Not Found"


@pytest.mark.parametrize("method, path", [("get", "/predict"), ("put", "/predict/batch"),
                                          ("post", "/health/live"), ("delete", "/model")])
def test_wrong_method_is_405_json(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 405 and response.is_json
    assert response.get_json()["status"] == "Method Not Allowed"


def test_without_a_model_predictions_are_503_with_the_reason(make_app, tmp_path):
    client = make_app(MODEL_PATH=str(tmp_path / "missing")).test_client()
    response = client.post("/predict", json=SEED_RECORD)
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "Service Unavailable"
    assert body["message"].startswith("Model not loaded: ") and "missing" in body["message"]


def test_server_fault_is_a_logged_json_500_without_traceback(app, monkeypatch, caplog):
    from accident_api.config import MODEL_EXTENSION

    service = app.extensions[MODEL_EXTENSION]

    def broken(rows):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service.predictor, "predict", broken)
    response = app.test_client().post("/predict", json=SEED_RECORD)
    assert response.status_code == 500
    assert response.get_json() == {"code": 500, "status": "Internal Server Error",
                                   "message": "Internal server error: the fault is logged."}
    assert "disk on fire" not in response.get_data(as_text=True)
    assert "disk on fire" in caplog.text
