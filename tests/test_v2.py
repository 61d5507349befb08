"""Open Inference Protocol (V2): app-level protocol JSON; tritonclient, in its binary default and
in JSON, against real gunicorn (the binary extension's own tests: tests/test_v2_binary.py)."""
import uuid

import numpy as np
import pytest

from accident_api.schemas import SEED_RECORD
from model.feature_specs import FEATURE_SPECS
from model.features import FEATURES

NAME = "accident-severity-rf"
INFER = f"/v2/models/{NAME}/infer"
ROW = [SEED_RECORD[name] for name in FEATURES]


def matrix(rows, datatype="FP64", name="input-0"):
    return {"name": name, "shape": [len(rows), len(FEATURES)], "datatype": datatype,
            "data": [v for row in rows for v in row]}


def test_server_metadata_and_health(client):
    assert client.get("/v2").get_json() == {"name": "accident-api", "version": "0.1.0",
                                            "extensions": ["binary_tensor_data"]}
    for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{NAME}/ready"):
        response = client.get(path)
        assert response.status_code == 200 and response.get_data() == b"", path


def test_model_metadata(client):
    meta = client.get(f"/v2/models/{NAME}").get_json()
    version = meta["versions"][0]
    assert meta["name"] == NAME and meta["platform"]
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 28]}]
    assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [
        ("predict", "INT64"), ("probability", "FP64"), ("prediction_id", "BYTES")]
    assert client.get(f"/v2/models/{NAME}/versions/{version}").get_json() == meta


def test_infer_matrix_equals_predict_batch(client):
    rows = [ROW, [*ROW[:5], 80, *ROW[6:]]]
    response = client.post(INFER, json={"id": "r1", "inputs": [matrix(rows)]})
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == "r1" and body["model_name"] == NAME
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["predict"]["datatype"] == "INT64" and outputs["predict"]["shape"] == [2]
    assert outputs["probability"]["datatype"] == "FP64"
    records = [dict(zip(FEATURES, row)) for row in rows]
    batch = client.post("/predict/batch", json={"records": records}).get_json()["predictions"]
    assert outputs["predict"]["data"] == [p["prediction"] for p in batch]
    assert outputs["probability"]["data"] == [p["probability"] for p in batch]


def test_infer_answers_prediction_ids_that_feedback_takes_back(client):
    response = client.post(INFER, json={"inputs": [matrix([ROW, ROW])]})
    (ids,) = [o for o in response.get_json()["outputs"] if o["name"] == "prediction_id"]
    assert ids["datatype"] == "BYTES" and ids["shape"] == [2] and len(set(ids["data"])) == 2
    recorded = client.post("/feedback", json=[{"prediction_id": prediction_id, "actual": 1}
                                              for prediction_id in ids["data"]])
    assert recorded.get_json()["summary"]["recorded"] == 2


def test_infer_one_tensor_per_feature_and_requested_outputs(client):
    inputs = [{"name": name, "shape": [1], "datatype": "FP64" if isinstance(v, float) else "INT64",
               "data": [v]} for name, v in SEED_RECORD.items()]
    response = client.post(INFER, json={"inputs": inputs, "outputs": [{"name": "probability"}]})
    assert response.status_code == 200
    outputs = response.get_json()["outputs"]
    assert [o["name"] for o in outputs] == ["probability"]
    single = client.post("/predict", json=SEED_RECORD).get_json()
    assert outputs[0]["data"] == [single["probability"]]


def test_infer_accepts_json_without_content_type(client):
    import json
    response = client.post(INFER, data=json.dumps({"inputs": [matrix([ROW])]}))
    assert response.status_code == 200


@pytest.mark.parametrize("body, status, fragment", [
    ({"inputs": [matrix([ROW[:27] + [1000]])]}, 400,
     "feature 'nb_vehicules' row 0: 1000 is not between 1 and 100"),
    ({"inputs": [matrix([ROW[:23] + [99.5] + ROW[24:]])]}, 400,
     "feature 'lat' row 0: 99.5 is not between -90.0 and 90.0"),
    ({"inputs": [{**matrix([ROW]), "shape": [1, 27]}]}, 400, "shape must be [N, 28]"),
    ({"inputs": [{**matrix([ROW]), "shape": [2, 28]}]}, 400, "needs 56 values"),
    ({"inputs": [{**matrix([ROW]), "data": ["a"] * 28}]}, 400,
     "data must be numbers; it holds booleans, strings, nulls or integers too large for FP64"),
    ({"inputs": [{**matrix([ROW]), "data": [True] * 28}]}, 400, "it holds booleans, strings"),
    ({"inputs": [{**matrix([ROW]), "data": [True] + ROW[1:]}]}, 400, "it holds booleans"),
    ({"inputs": [{**matrix([ROW, ROW]), "data": [ROW, [False] + ROW[1:]]}]}, 400,
     "it holds booleans"),
    ({"inputs": [{**matrix([ROW]), "data": [None] + ROW[1:]}]}, 400, "it holds booleans"),
    # beyond a double's range only the standard library reads the literal: a Python int
    ({"inputs": [{**matrix([ROW]), "data": [10 ** 400] + ROW[1:]}]}, 400, "too large for FP64"),
    # within it (orjson), an integer literal is the double it denotes, then checked like any
    ({"inputs": [{**matrix([ROW]), "data": [10 ** 30] + ROW[1:]}]}, 400,
     "feature 'place' row 0: 1e+30 is not"),
    ({"inputs": [matrix([ROW])], "outputs": [{"name": "predict"}, {"name": "predict"}]}, 400,
     "each output may be requested once"),
    ({"inputs": [{"name": name, "shape": [1], "datatype": "FP64", "data": [value]}
                 for name, value in zip(FEATURES, ROW)]
      + [{"name": "catu", "shape": [1], "datatype": "FP64", "data": [1]}]}, 400,
     "exactly one tensor per feature; duplicated ['catu']"),
    ({"inputs": [{**matrix([ROW]), "datatype": "BYTES"}]}, 400, "datatype"),
    ({"inputs": [matrix([[1.5] + ROW[1:]], "INT64")]}, 400, "needs integers"),
    ({"inputs": []}, 400, "at least one"),
    ({"outputs": []}, 400, "inputs"),
    ({"inputs": [matrix([ROW])], "outputs": [{"name": "nope"}]}, 400, "outputs"),
    ({"inputs": [{"name": "catu", "shape": [1], "datatype": "FP64", "data": [1]}]}, 400,
     "missing"),
])
def test_infer_errors_use_the_protocol_error_object(client, body, status, fragment):
    response = client.post(INFER, json=body)
    assert response.status_code == status
    payload = response.get_json()
    assert list(payload) == ["error"] and fragment in payload["error"], payload
    assert "np." not in payload["error"] and "'O'" not in payload["error"], payload


def test_unknown_model_and_version_are_404_errors(client):
    assert client.get("/v2/models/other").status_code == 404
    response = client.post("/v2/models/other/infer", json={"inputs": [matrix([ROW])]})
    assert response.status_code == 404 and "not served here" in response.get_json()["error"]
    response = client.get(f"/v2/models/{NAME}/versions/0/ready")
    assert response.status_code == 404 and list(response.get_json()) == ["error"]


def test_v2_malformed_json_unknown_path_and_method(client):
    response = client.post(INFER, data="{", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": "body: Invalid JSON body."}
    assert list(client.get("/v2/nothing").get_json()) == ["error"]
    assert client.get(INFER).status_code == 405 and list(client.get(INFER).get_json()) == ["error"]


@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000,
                                  '{"a":' * 50_000 + "1" + "}" * 50_000,
                                  '{"inputs": ' + "9" * 5000 + "}"],
                         ids=["nested_lists", "nested_objects", "integer_over_4300_digits"])
def test_v2_json_that_json_loads_cannot_decode_is_400(client, body):
    response = client.post(INFER, data=body)
    assert response.status_code == 400
    assert response.get_json() == {"error": "body: Invalid JSON body."}


def test_batch_cap_applies_to_v2(make_app):
    client = make_app(MAX_BATCH_SIZE=2).test_client()
    response = client.post(INFER, json={"inputs": [matrix([ROW] * 3)]})
    assert response.status_code == 413 and "MAX_BATCH_SIZE=2" in response.get_json()["error"]


def test_not_ready_server(make_app, tmp_path):
    client = make_app(MODEL_PATH=str(tmp_path / "none")).test_client()
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 400
    for path in (f"/v2/models/{NAME}/ready", f"/v2/models/{NAME}/versions/1/ready"):
        response = client.get(path)
        assert response.status_code == 400 and response.get_data() == b"", path


# rows through real gunicorn, each also posted to /predict (module fixture below)
TRITON_ROWS = [ROW, [*ROW[:5], 85, *ROW[6:]], [*ROW[:13], 130, *ROW[14:]],
               [*ROW[:23], 43.3, 5.37, *ROW[25:]]]


@pytest.fixture(scope="module")
def triton(live_server):
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url=live_server.url.removeprefix("http://"))
    yield client
    client.close()


@pytest.fixture(scope="module")
def predict_answers(live_server):
    """/predict's (prediction, probability) for each of TRITON_ROWS."""
    import requests

    answers = [requests.post(f"{live_server.url}/predict", json=dict(zip(FEATURES, row)),
                             timeout=10).json() for row in TRITON_ROWS]
    return [a["prediction"] for a in answers], [a["probability"] for a in answers]


@pytest.mark.integration
def test_tritonclient_reads_server_and_model_metadata(triton):
    import tritonclient.http as httpclient

    assert triton.is_server_live() and triton.is_server_ready() and triton.is_model_ready(NAME)
    meta = triton.get_model_metadata(NAME)
    assert meta["name"] == NAME and meta["inputs"][0]["shape"] == [-1, 28]
    server = triton.get_server_metadata()
    assert server["name"] == "accident-api" and "binary_tensor_data" in server["extensions"]
    with pytest.raises(httpclient.InferenceServerException, match="not served here"):
        triton.get_model_metadata("other-model")


def triton_inputs(layout: str, binary: bool) -> list:
    """tritonclient inputs of TRITON_ROWS: one [N, 28] FP64 tensor, or one [N] per feature."""
    import tritonclient.http as httpclient

    rows = np.array(TRITON_ROWS, dtype=np.float64)
    if layout == "matrix":
        tensor = httpclient.InferInput("input-0", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows, binary_data=binary)
        return [tensor]
    inputs = []
    for column, spec in enumerate(FEATURE_SPECS):
        datatype, dtype = ("INT64", np.int64) if spec.dtype == "int" else ("FP64", np.float64)
        tensor = httpclient.InferInput(spec.name, [len(rows)], datatype)
        tensor.set_data_from_numpy(rows[:, column].astype(dtype), binary_data=binary)
        inputs.append(tensor)
    return inputs


@pytest.mark.integration
@pytest.mark.parametrize("outputs", ["binary", "json", "unnamed"])
@pytest.mark.parametrize("layout", ["matrix", "per_feature"])
@pytest.mark.parametrize("binary_inputs", [True, False], ids=["binary_in", "json_in"])
def test_tritonclient_equals_predict(triton, predict_answers, binary_inputs, layout, outputs):
    """tritonclient's defaults (binary both ways; outputs unnamed = all in binary) and JSON."""
    import tritonclient.http as httpclient

    wanted = None if outputs == "unnamed" else [
        httpclient.InferRequestedOutput(name, binary_data=outputs == "binary")
        for name in ("predict", "probability")]
    result = triton.infer(NAME, triton_inputs(layout, binary_inputs), outputs=wanted,
                          request_id="r-7")
    assert result.get_response()["id"] == "r-7"
    in_binary = {o["name"]: "binary_data_size" in o.get("parameters", {})
                 for o in result.get_response()["outputs"]}
    named = ("predict", "probability") + (("prediction_id",) if outputs == "unnamed" else ())
    assert in_binary == dict.fromkeys(named, outputs != "json")
    classes, probabilities = predict_answers
    assert result.as_numpy("predict").tolist() == classes
    assert result.as_numpy("probability").tolist() == probabilities
    if outputs == "unnamed":  # every output: the prediction ids too, BYTES decoded
        ids = [value.decode() for value in result.as_numpy("prediction_id").tolist()]
        assert len(set(ids)) == len(TRITON_ROWS)
        assert all(uuid.UUID(i).version == 7 for i in ids)
