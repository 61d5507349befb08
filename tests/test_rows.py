"""The vectorised record check (accident_api.rows) accepts exactly what marshmallow accepts.

Property: for random valid records and records mutated in every way a client can get one
wrong, `valid_rows` returns rows  <=>  RecordFieldsSchema (marshmallow alone) loads them, and
then the rows equal marshmallow's. Error bodies are marshmallow's by construction (the fast
path never answers an invalid request), pinned by the HTTP tests at the end.
"""
import math

import marshmallow as ma
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accident_api.rows import records_to_rows, valid_rows
from accident_api.schemas import SEED_RECORD, AccidentRecordSchema, RecordFieldsSchema
from model.features import FEATURE_SPECS, FEATURES

REFERENCE = RecordFieldsSchema()


def valid_value(spec):
    """Any value the schema accepts for `spec`: codes / in-range numbers, ints or floats."""
    if spec.codes is not None:
        code = st.sampled_from(spec.codes)
        return st.one_of(code, code.map(float))  # the sketch sends integral floats ("0.0")
    low, high = spec.minimum, spec.maximum
    if spec.dtype == "int":
        number = st.integers(min_value=math.ceil(low), max_value=math.floor(high))
        return st.one_of(number, number.map(float))
    return st.one_of(st.floats(min_value=low, max_value=high),
                     st.integers(min_value=math.ceil(low), max_value=math.floor(high)))


def invalid_value(spec, kind):
    """A value of the given kind of mistake (or near-miss, some of them valid) for `spec`."""
    low = min(spec.codes) if spec.codes is not None else spec.minimum
    high = max(spec.codes) if spec.codes is not None else spec.maximum
    if kind == "fraction":  # integral features: a fractional number, within the range
        return st.sampled_from([low + 0.5, high - 0.5, low + 1e-9])
    if kind == "outside":
        return st.sampled_from([low - 1, high + 1, low - 1e-9, high + 1e-9, low, high,
                                float(low), float(high)])
    if kind == "not_a_code":  # between the smallest and largest codes, not one of them
        gaps = [c for c in range(int(low), int(high) + 1)
                if spec.codes is not None and c not in spec.codes]
        return st.sampled_from(gaps or [low - 1])
    if kind == "type":
        return st.one_of(st.booleans(), st.none(), st.text(max_size=3),
                         st.sampled_from(["1", [1], {"a": 1}]))
    if kind == "special":
        return st.sampled_from([math.nan, math.inf, -math.inf, 10 ** 400, -(10 ** 400),
                                10 ** 20, -0.0, 2 ** 63 + 1])
    return st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers())


MUTATIONS = ["fraction", "outside", "not_a_code", "type", "special", "any", "missing",
             "unknown"]


@st.composite
def records(draw):
    """A valid record, then maybe one or two mutations (a value, a missing or unknown key)."""
    record = {spec.name: draw(valid_value(spec)) for spec in FEATURE_SPECS}
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 1, 2]))):
        spec = draw(st.sampled_from(FEATURE_SPECS))
        mutation = draw(st.sampled_from(MUTATIONS))
        if mutation == "missing":
            record.pop(spec.name, None)
        elif mutation == "unknown":
            record[draw(st.sampled_from(["extra", "Place", "", spec.name + "_"]))] = 1
        else:
            record[spec.name] = draw(invalid_value(spec, mutation))
    return record


def marshmallow_rows(batch):
    try:
        return records_to_rows([REFERENCE.load(record) for record in batch])
    except ma.ValidationError:
        return None


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records(), min_size=1, max_size=3))
def test_fast_path_accepts_exactly_what_marshmallow_accepts(batch):
    expected = marshmallow_rows(batch)
    got = valid_rows(batch)
    assert (got is None) == (expected is None), batch
    if got is not None:
        assert got.dtype == np.float64 and got.shape == (len(batch), len(FEATURES))
        assert np.array_equal(got, expected)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_record_schema_loads_exactly_what_marshmallow_loads(record):
    """AccidentRecordSchema (fast path first) == RecordFieldsSchema: same dict, same types."""
    try:
        expected = REFERENCE.load(record)
    except ma.ValidationError as error:
        with pytest.raises(ma.ValidationError) as raised:
            AccidentRecordSchema().load(record)
        assert raised.value.messages == error.messages
        return
    got = AccidentRecordSchema().load(record)
    assert got == expected
    assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]
    assert list(got) == list(expected)


@pytest.mark.parametrize("body", [None, [], {}, "x", 1, [None], [[1]], [SEED_RECORD, "x"],
                                  [dict(SEED_RECORD, extra=1)], [True]])
def test_non_record_containers_are_left_to_marshmallow(body):
    assert valid_rows(body) is None


def test_a_thousand_valid_records_pass_in_one_array():
    rows = valid_rows([SEED_RECORD] * 1000)
    assert rows.shape == (1000, len(FEATURES))
    assert np.array_equal(rows, records_to_rows([SEED_RECORD] * 1000))


@pytest.mark.parametrize("records, field, message", [
    ([SEED_RECORD, {**SEED_RECORD, "catu": 9}], "catu", "Must be one of the codes 1, 2, 3."),
    ([{**SEED_RECORD, "vma": True}], "vma", "Not a valid integer: send a JSON number without a "
                                            "fractional part."),
    ([{**SEED_RECORD, "lat": 10 ** 400}], "lat", "Number too large: it does not fit in a float."),
])
def test_batch_errors_are_marshmallows(client, records, field, message):
    reply = client.post("/predict/batch", json={"records": records})
    assert reply.status_code == 422
    body = reply.get_json()
    index = str(len(records) - 1)
    assert body["errors"]["json"]["records"][index] == {field: [message]}
    assert body["code"] == 422 and body["status"] == "Unprocessable Entity"


def test_batch_cap_is_checked_before_the_records(make_app):
    reply = make_app(MAX_BATCH_SIZE=2).test_client().post(
        "/predict/batch", json={"records": [SEED_RECORD, SEED_RECORD, {"bad": 1}]})
    assert reply.status_code == 413 and "MAX_BATCH_SIZE=2" in reply.get_json()["message"]


def test_batch_and_single_predictions_agree(client):
    records = [SEED_RECORD, {**SEED_RECORD, "secu1": 1, "victim_age": 18.5, "vma": 90.0}]
    batch = client.post("/predict/batch", json={"records": records}).get_json()["predictions"]
    single = [client.post("/predict", json=record).get_json() for record in records]
    assert batch == single
