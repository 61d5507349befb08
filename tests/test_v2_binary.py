"""The binary tensor data extension of /v2: requests, responses, every malformed body, limits,
metrics and the BYTES encoder, in-process; tritonclient (both modes) and a fuzz run against
real gunicorn."""
import json
import struct
from collections import Counter

import numpy as np
from tritonclient.utils import deserialize_bytes_tensor
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from accident_api.blueprints.v2.binary import (HEADER_LENGTH, encode_bytes, encode_tensor,
                                               json_data, output_tensor)
from accident_api.schemas import SEED_RECORD
from model.features import FEATURES

NAME = "accident-severity-rf"
INFER = f"/v2/models/{NAME}/infer"
ROW = [SEED_RECORD[name] for name in FEATURES]
LAT, LONG = FEATURES.index("lat"), FEATURES.index("long")
DTYPES = {"FP64": "<f8", "FP32": "<f4", "INT64": "<i8", "INT32": "<i4"}


def varied_rows(n):
    """`n` valid rows, exactly representable in every datatype (integral coordinates)."""
    rows = []
    for i in range(n):
        row = list(ROW)
        row[FEATURES.index("hour")] = i % 24
        row[FEATURES.index("victim_age")] = 18 + i % 60
        row[FEATURES.index("vma")] = (30, 50, 80, 110)[i % 4]
        row[LAT], row[LONG] = 48, 2
        rows.append([int(value) for value in row])
    return rows


def binary_request(header: dict, *chunks: bytes, length=None):
    """(body, headers) of a binary-extension request: the JSON header, then `chunks`."""
    encoded = json.dumps(header).encode()
    return encoded + b"".join(chunks), {HEADER_LENGTH: str(len(encoded) if length is None
                                                           else length)}


def binary_input(name, values, datatype="FP64", shape=None):
    """(the input's JSON object, its bytes) for `values` sent as binary tensor data."""
    raw = np.asarray(values, dtype=DTYPES[datatype]).tobytes()
    shape = list(np.shape(values)) if shape is None else shape
    return ({"name": name, "shape": shape, "datatype": datatype,
             "parameters": {"binary_data_size": len(raw)}}, raw)


def post_binary(client, header, *chunks, length=None):
    body, headers = binary_request(header, *chunks, length=length)
    return client.post(INFER, data=body, headers=headers,
                       content_type="application/octet-stream")


def answers(outputs) -> dict:
    """{output name: data} of a response's outputs, the prediction ids (new each time) left out."""
    return {o["name"]: o["data"] for o in outputs if o["name"] != "prediction_id"}


def json_outputs(client, rows):
    """{output name: data} of the same rows sent as JSON (prediction ids left out)."""
    body = {"inputs": [{"name": "input-0", "shape": [len(rows), len(FEATURES)],
                        "datatype": "FP64", "data": [v for row in rows for v in row]}]}
    response = client.post(INFER, json=body)
    assert response.status_code == 200, response.get_json()
    return answers(response.get_json()["outputs"])


def split_response(response):
    """(JSON header, {name: numpy array} of its binary outputs) of a binary response."""
    length = int(response.headers[HEADER_LENGTH])
    body = response.get_data()
    header = json.loads(body[:length])
    arrays, offset = {}, length
    for output in header["outputs"]:
        if "data" in output:
            continue
        size = output["parameters"]["binary_data_size"]
        raw = body[offset:offset + size]
        if output["datatype"] == "BYTES":  # each element: 4-byte little-endian length, bytes
            arrays[output["name"]] = deserialize_bytes_tensor(raw)
        else:
            arrays[output["name"]] = np.frombuffer(raw, dtype=DTYPES[output["datatype"]])
        offset += size
    assert offset == len(body)
    return header, arrays


def rejected(field, reason):
    return REGISTRY.get_sample_value("model_input_rejected_total",
                                     {"field": field, "reason": reason}) or 0.0


@pytest.mark.parametrize("datatype", list(DTYPES))
def test_binary_matrix_in_each_datatype_predicts_like_json(client, datatype):
    rows = varied_rows(5)
    tensor, raw = binary_input("input-0", rows, datatype)
    response = post_binary(client, {"id": "b1", "inputs": [tensor]}, raw)
    assert response.status_code == 200, response.get_json()
    # binary inputs, JSON outputs (none asked as binary): a plain JSON response
    assert response.mimetype == "application/json" and HEADER_LENGTH not in response.headers
    body = response.get_json()
    assert body["id"] == "b1"
    assert answers(body["outputs"]) == json_outputs(client, rows)


def test_fp32_values_are_the_float32_numbers_sent(client):
    rows = [[*ROW[:LAT], 48.6, 2.89, *ROW[LONG + 1:]]]
    tensor, raw = binary_input("input-0", rows, "FP32")
    response = post_binary(client, {"inputs": [tensor]}, raw)
    as_float32 = np.asarray(rows, dtype="<f4").astype("float64").tolist()
    assert answers(response.get_json()["outputs"]) == json_outputs(client, as_float32)


def test_per_feature_tensors_binary_and_json_mixed(client):
    rows = varied_rows(3)
    inputs, chunks = [], []
    for column, name in enumerate(FEATURES):
        values = [row[column] for row in rows]
        if column % 3 == 0:  # every third one as JSON data, between binary ones
            inputs.append({"name": name, "shape": [3], "datatype": "INT64", "data": values})
            continue
        tensor, raw = binary_input(name, values, ("FP64", "INT32")[column % 2],
                                   shape=[3, 1] if column % 5 == 0 else [3])
        inputs.append(tensor)
        chunks.append(raw)
    response = post_binary(client, {"inputs": inputs}, *chunks)
    assert response.status_code == 200, response.get_json()
    assert answers(response.get_json()["outputs"]) == json_outputs(client, rows)


def test_binary_outputs_for_all_and_per_output_overrides(client):
    rows = varied_rows(4)
    expected = json_outputs(client, rows)
    tensor, raw = binary_input("input-0", rows)

    response = post_binary(client, {"inputs": [tensor], "parameters":
                                    {"binary_data_output": True}}, raw)
    assert response.status_code == 200 and response.mimetype == "application/octet-stream"
    header, arrays = split_response(response)
    assert header["model_name"] == NAME
    assert [(o["name"], o["datatype"], o["shape"], o["parameters"], "data" in o)
            for o in header["outputs"]] == [
        ("predict", "INT64", [4], {"binary_data_size": 32}, False),
        ("probability", "FP64", [4], {"binary_data_size": 32}, False),
        ("prediction_id", "BYTES", [4], {"binary_data_size": 4 * (4 + 36)}, False)]
    assert arrays["predict"].tolist() == expected["predict"]
    assert arrays["probability"].tolist() == expected["probability"]

    # binary_data on an output overrides binary_data_output; requested order is kept
    response = post_binary(client, {"inputs": [tensor], "parameters": {"binary_data_output": True},
                                    "outputs": [{"name": "probability"},
                                                {"name": "predict",
                                                 "parameters": {"binary_data": False}}]}, raw)
    header, arrays = split_response(response)
    assert [o["name"] for o in header["outputs"]] == ["probability", "predict"]
    assert header["outputs"][1]["data"] == expected["predict"] and list(arrays) == ["probability"]


def test_json_request_can_ask_for_binary_outputs(client):
    rows = varied_rows(2)
    response = client.post(INFER, json={
        "inputs": [{"name": "input-0", "shape": [2, 28], "datatype": "FP64",
                    "data": [v for row in rows for v in row]}],
        "outputs": [{"name": "probability", "parameters": {"binary_data": True}}]})
    header, arrays = split_response(response)
    assert list(arrays) == ["probability"]
    assert arrays["probability"].tolist() == json_outputs(client, rows)["probability"]


def test_tritonclient_encodes_and_decodes_like_this_server(client):
    """tritonclient's own body encoder and response parser, without a network."""
    import tritonclient.http as httpclient

    rows = np.array(varied_rows(3), dtype=np.float64)
    tensor = httpclient.InferInput("input-0", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows)  # binary by default
    body, json_size = httpclient.InferenceServerClient.generate_request_body([tensor])
    response = client.post(INFER, data=body, headers={HEADER_LENGTH: str(json_size)})
    result = httpclient.InferResult.from_response_body(
        response.get_data(), header_length=int(response.headers[HEADER_LENGTH]))
    expected = json_outputs(client, rows.tolist())
    assert result.as_numpy("predict").tolist() == expected["predict"]
    assert result.as_numpy("probability").tolist() == expected["probability"]


GOOD_INPUT, GOOD_RAW = binary_input("input-0", [ROW])
SIZE_224 = {"binary_data_size": 224}


def with_input(**changes):
    return {"inputs": [{**GOOD_INPUT, **changes}]}


# (header, binary part, length header (None: the header's own), status, error, (field, reason))
MALFORMED = {
    "length_not_a_number": (with_input(), GOOD_RAW, "12a", 400,
                            f"{HEADER_LENGTH}: must be the JSON header's length in bytes (a "
                            f"non-negative integer), got '12a'", None),
    "length_negative": (with_input(), GOOD_RAW, "-3", 400, "got '-3'", None),
    "length_huge": (with_input(), GOOD_RAW, "9" * 5000, 400, "must be the JSON header's", None),
    "length_beyond_body": (with_input(), GOOD_RAW, "100000", 400,
                           f"{HEADER_LENGTH}: 100000 bytes of JSON header, but the body has", None),
    "length_zero": (with_input(), GOOD_RAW, "0", 400, "0 bytes of JSON header", None),
    "length_cuts_the_json": (with_input(), GOOD_RAW, "20", 400, "body: Invalid JSON body.", None),
    "length_header_on_a_json_body": (
        {"inputs": [{"name": "input-0", "shape": [1, 28], "datatype": "FP64", "data": ROW}]}, b"",
        None, 400, f"{HEADER_LENGTH} is given but no input has parameters.binary_data_size",
        ("binary_data_size", "missing")),
    "size_not_matching_shape": (
        with_input(parameters={"binary_data_size": 216}), GOOD_RAW[:216], None, 400,
        "inputs[0].parameters.binary_data_size: 216 bytes, but shape [1, 28] of FP64 needs 224",
        ("binary_data_size", "size")),
    "size_not_matching_datatype": (
        with_input(datatype="FP32"), GOOD_RAW, None, 400, "of FP32 needs 112",
        ("binary_data_size", "size")),
    "size_missing": (
        {"inputs": [{k: v for k, v in GOOD_INPUT.items() if k != "parameters"}]}, GOOD_RAW, None,
        400, "inputs[0].data: missing (or parameters.binary_data_size", ("data", "missing")),
    "size_a_string": (with_input(parameters={"binary_data_size": "224"}), GOOD_RAW, None, 400,
                      "binary_data_size: must be a byte count (an integer >= 0), got '224'",
                      ("binary_data_size", "type")),
    "size_a_boolean": (with_input(parameters={"binary_data_size": True}), GOOD_RAW, None, 400,
                       "got True", ("binary_data_size", "type")),
    "size_negative": (with_input(parameters={"binary_data_size": -224}), GOOD_RAW, None, 400,
                      "got -224", ("binary_data_size", "type")),
    "data_and_size": (with_input(data=ROW), GOOD_RAW, None, 400,
                      "inputs[0]: give either data or parameters.binary_data_size, not both",
                      ("binary_data_size", "conflict")),
    "truncated_tensor": (with_input(), GOOD_RAW[:200], None, 400,
                         "input 'input-0': 224 bytes of binary data, but only 200 follow",
                         ("binary_data_size", "truncated")),
    "trailing_bytes": (with_input(), GOOD_RAW + b"\x00" * 8, None, 400,
                       "8 bytes after the last binary tensor (the inputs' binary_data_size add "
                       "up to 224)", ("binary_data_size", "trailing")),
    "bool_datatype": (with_input(datatype="BOOL", parameters={"binary_data_size": 28}),
                      b"\x01" * 28, None, 400,
                      "inputs[0].datatype: must be one of FP64, FP32, INT64, INT32, got 'BOOL'",
                      ("datatype", "code")),
    "bytes_datatype": (with_input(datatype="BYTES"), GOOD_RAW, None, 400, "got 'BYTES'",
                       ("datatype", "code")),
    "shape_not_n_by_28": (with_input(shape=[2, 14]), GOOD_RAW, None, 400,
                          "input 'input-0': shape must be [N, 28]", ("inputs", "shape")),
    "not_finite": (*binary_input("input-0", [[np.nan, *ROW[1:]]]), None, 400,
                   "feature 'place' row 0: nan is not a finite number", ("place", "not_finite")),
    "out_of_domain_int": (*binary_input("input-0", [[*ROW[:27], 2 ** 62]], "INT64"), None, 400,
                          "feature 'nb_vehicules' row 0: 4.61169e+18 is not between 1 and 100",
                          ("nb_vehicules", "range")),
    "binary_data_output_not_a_boolean": (
        {**with_input(), "parameters": {"binary_data_output": "yes"}}, GOOD_RAW, None, 400,
        "parameters.binary_data_output: must be true or false, got 'yes'",
        ("parameters", "type")),
    "binary_data_not_a_boolean": (
        {**with_input(), "outputs": [{"name": "predict", "parameters": {"binary_data": 1}}]},
        GOOD_RAW, None, 400, "outputs[0].parameters.binary_data: must be true or false, got 1",
        ("parameters", "type")),
}
# tuples built by binary_input come as (input, raw): wrap them into a request header
MALFORMED = {key: (({"inputs": [case[0]]} if "name" in case[0] else case[0]), *case[1:])
             for key, case in MALFORMED.items()}


@pytest.mark.parametrize("header, binary, length, status, error, counted",
                         list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_binary_requests_are_400s_naming_the_problem(client, header, binary, length,
                                                               status, error, counted):
    before = rejected(*counted) if counted else None
    response = post_binary(client, header, binary, length=length)
    assert response.status_code == status
    payload = response.get_json()
    assert list(payload) == ["error"] and error in payload["error"], payload
    if counted:
        assert rejected(*counted) == before + 1


def test_size_given_without_the_length_header(client):
    response = client.post(INFER, json=with_input())
    assert response.status_code == 400
    assert response.get_json() == {"error": "inputs with parameters.binary_data_size need the "
                                            f"{HEADER_LENGTH} header (the JSON header's length)"}


def test_declared_rows_over_max_batch_size_is_413_before_any_tensor_is_read(make_app):
    client = make_app(MAX_BATCH_SIZE=2).test_client()
    tensor = {**GOOD_INPUT, "shape": [3, 28], "parameters": {"binary_data_size": 3 * 224}}
    # the binary part is missing altogether: the row count alone decides
    response = post_binary(client, {"inputs": [tensor]}, b"")
    assert response.status_code == 413
    assert response.get_json() == {"error": "Too many rows: 3 > MAX_BATCH_SIZE=2"}


def test_body_over_max_content_length_is_413(make_app):
    client = make_app(MAX_CONTENT_LENGTH=1000).test_client()
    tensor, raw = binary_input("input-0", varied_rows(5))
    response = post_binary(client, {"inputs": [tensor]}, raw)
    assert response.status_code == 413
    assert response.get_json() == {"error": "Request body over MAX_CONTENT_LENGTH=1000 bytes; "
                                            "send a smaller body."}


def test_binary_requests_are_counted_like_json_ones(client):
    labels = {"method": "POST", "endpoint": "v2.model_infer", "status": "200"}

    def counts():
        return (REGISTRY.get_sample_value("http_requests_total", labels) or 0.0,
                sum(REGISTRY.get_sample_value("model_predictions_total", {"label": label}) or 0.0
                    for label in ("not_severe", "severe")))

    requests_before, predicted_before = counts()
    tensor, raw = binary_input("input-0", varied_rows(3))
    assert post_binary(client, {"inputs": [tensor],
                                "parameters": {"binary_data_output": True}}, raw).status_code == 200
    assert counts() == (requests_before + 1, predicted_before + 3)


def test_bytes_elements_are_length_prefixed():
    assert encode_bytes([b"ab", "é", b""]) == (b"\x02\x00\x00\x00ab" b"\x02\x00\x00\x00\xc3\xa9"
                                               b"\x00\x00\x00\x00")
    assert encode_bytes([]) == b""
    values = np.array([["id-1", "id-22"], ["", "ü"]], dtype=object)
    assert encode_tensor("BYTES", values) == b"".join(
        struct.pack("<I", len(v.encode())) + v.encode() for v in ("id-1", "id-22", "", "ü"))
    assert json_data("BYTES", values) == ["id-1", "id-22", "", "ü"]


def test_a_bytes_output_slots_into_both_encodings():
    """An output of any datatype, BYTES included, reads back with tritonclient's decoders."""
    import tritonclient.http as httpclient
    from tritonclient.utils import deserialize_bytes_tensor

    ids = np.array(["3f2a-0001", "3f2a-0002"], dtype=object)
    as_json, none = output_tensor("prediction_id", "BYTES", ids, binary=False)
    assert (as_json, none) == ({"name": "prediction_id", "datatype": "BYTES", "shape": [2],
                                "data": ["3f2a-0001", "3f2a-0002"]}, None)
    as_binary, raw = output_tensor("prediction_id", "BYTES", ids, binary=True)
    assert as_binary == {"name": "prediction_id", "datatype": "BYTES", "shape": [2],
                         "parameters": {"binary_data_size": 2 * (4 + 9)}}
    assert deserialize_bytes_tensor(raw).tolist() == [b"3f2a-0001", b"3f2a-0002"]
    classes, raw_classes = output_tensor("predict", "INT64", np.array([0, 1]), binary=True)
    header = json.dumps({"outputs": [classes, as_binary]}).encode()
    result = httpclient.InferResult.from_response_body(header + raw_classes + raw,
                                                       header_length=len(header))
    assert result.as_numpy("predict").tolist() == [0, 1]
    assert result.as_numpy("prediction_id").tolist() == [b"3f2a-0001", b"3f2a-0002"]


# --- fuzz: malformed binary bodies against real gunicorn ------------------------------------
ITEM_SIZES = {"FP64": 8, "FP32": 4, "INT64": 8, "INT32": 4}
WRONG_DATATYPES = ["BOOL", "BYTES", "FP16", "UINT8", "UINT64", "fp64", ""]
HEADER_TEXT = st.text(alphabet="0123456789abcXYZ-+.", max_size=5)


def differs_from(right: int):
    """A filter: values that do not denote the integer `right` (as an int or digit string)."""
    def differs(wrong) -> bool:
        if type(wrong) is int:
            return wrong != right
        return not (isinstance(wrong, str) and wrong.isdigit() and int(wrong) == right)
    return differs


@st.composite
def malformed_binary_bodies(draw):
    """(body, length header, mistakes) of a binary request with at least one mistake in its
    framing: length header, datatype, binary_data_size or the bytes that follow."""
    layout = draw(st.sampled_from(["matrix", "per_feature"]))
    rows = draw(st.integers(0, 1500))
    names, shape = (["input-0"], [rows, 28]) if layout == "matrix" else (list(FEATURES), [rows])
    count = rows * 28 if layout == "matrix" else rows
    mistakes = draw(st.sets(st.sampled_from(["length", "datatype", "size", "payload"]),
                            min_size=1))
    inputs = []
    for name in names:
        datatype = draw(st.sampled_from(list(ITEM_SIZES)))
        size = ITEM_SIZES[datatype] * count
        if "size" in mistakes:
            size = draw(st.one_of(st.integers(-5, 2 * size + 64), HEADER_TEXT, st.booleans(),
                                  st.none(), st.floats()).filter(differs_from(size)))
        inputs.append({"name": name, "shape": shape, "datatype": datatype,
                       "parameters": {"binary_data_size": size}})
    if "datatype" in mistakes:
        wrong = draw(st.integers(0, len(inputs) - 1))
        inputs[wrong]["datatype"] = draw(st.sampled_from(WRONG_DATATYPES))
    header = json.dumps({"inputs": inputs}).encode()
    payload = sum(i["parameters"]["binary_data_size"] for i in inputs
                  if type(i["parameters"]["binary_data_size"]) is int
                  and i["parameters"]["binary_data_size"] > 0)
    if "payload" in mistakes:  # truncated or oversized tensors
        payload = draw(st.integers(0, payload + 64).filter(lambda n, right=payload: n != right))
    noise = draw(st.binary(min_size=min(payload, 64), max_size=min(payload, 64)))
    length = len(header)
    if "length" in mistakes:
        length = draw(st.one_of(st.integers(-3, len(header) + payload + 100), HEADER_TEXT)
                      .filter(differs_from(len(header))))
    return header + noise + bytes(payload - len(noise)), str(length), sorted(mistakes)


@pytest.mark.integration
def test_malformed_binary_bodies_get_400_or_413_and_the_server_keeps_answering(live_server,
                                                                                figures):
    import requests

    session = requests.Session()
    statuses = Counter()

    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=malformed_binary_bodies())
    def check(case):
        body, length, mistakes = case
        response = session.post(live_server.url + INFER, data=body, timeout=10,
                                headers={HEADER_LENGTH: length,
                                         "Content-Type": "application/octet-stream"})
        statuses[response.status_code] += 1
        assert response.status_code in (400, 413), (mistakes, response.text[:300])
        assert list(response.json()) == ["error"]

    check()
    figures(f"{sum(statuses.values())} malformed binary bodies: statuses {dict(statuses)}")
    assert statuses[400] >= 100, statuses
    tensor, raw = binary_input("input-0", [ROW])
    body, headers = binary_request({"inputs": [tensor]}, raw)
    assert session.post(live_server.url + INFER, data=body, headers=headers,
                        timeout=10).status_code == 200
    assert session.get(live_server.url + "/v2/health/ready", timeout=10).status_code == 200
    assert not any(name == "flask_http_request_exceptions_total" and value
                   for (name, _), value in live_server.samples().items())
