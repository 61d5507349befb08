"""accident_api.validation: the one validation of records, stated again here value by value.

Property: for random valid records and records mutated in every way a client can get one
wrong, a batch is accepted exactly when every value passes the rules below (written
independently of the code under test), the rows are the values in feature order, and a refused
batch names exactly the fields that break a rule, each with its reason.
"""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from accident_api.schemas import SEED_RECORD
from accident_api.validation import batch_rows, problems, record_rows, rows_if_valid
from model.features import FEATURE_SPECS, FEATURES
from tests.fixtures.service import without_id


# a refusal is counted: the metrics exist once an app was built
pytestmark = pytest.mark.usefixtures("app")


def value_reason(spec, value):
    """The reason slug `value` is refused for `spec`, or None when it is valid."""
    if value is None:
        return "null"
    if type(value) not in (int, float):
        return "type"
    try:
        number = float(value)
    except OverflowError:
        return "range"
    if not math.isfinite(number):
        return "not_finite"
    if spec.dtype == "int" and not number.is_integer():
        return "type"
    if spec.codes is not None:
        return None if number in spec.codes else "code"
    return None if spec.minimum <= number <= spec.maximum else "range"


def expected_reasons(record) -> dict:
    """{field: reason} of everything wrong with `record` (unknown keys fold into _unknown)."""
    reasons = {key: "unknown_field" for key in record if key not in FEATURES}
    for spec in FEATURE_SPECS:
        if spec.name not in record:
            reasons[spec.name] = "missing"
        elif (reason := value_reason(spec, record[spec.name])) is not None:
            reasons[spec.name] = reason
    return reasons


def valid_value(spec):
    """Any value valid for `spec`: codes / in-range numbers, ints or integral floats."""
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


@pytest.mark.slow
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records(), min_size=1, max_size=3))
def test_a_batch_is_accepted_exactly_when_every_value_is_valid(batch):
    wanted = [expected_reasons(record) for record in batch]
    rows = rows_if_valid(batch)
    assert (rows is not None) == (not any(wanted)), (batch, wanted)
    if rows is not None:
        assert rows.dtype == np.float64 and rows.shape == (len(batch), len(FEATURES))
        assert rows.tolist() == [[float(record[name]) for name in FEATURES] for record in batch]
    for record, reasons in zip(batch, wanted):
        messages, found = problems(record)
        assert {field for field, _ in found} == {"_unknown" if reason == "unknown_field"
                                                 else field for field, reason in reasons.items()}
        assert set(messages) == set(reasons)
        assert found == {("_unknown" if reason == "unknown_field" else field, reason)
                         for field, reason in reasons.items()}


@pytest.mark.parametrize("body", [None, [], {}, "x", 1, [None], [[1]], [SEED_RECORD, "x"],
                                  [dict(SEED_RECORD, extra=1)], [True]])
def test_anything_but_a_list_of_valid_records_is_refused(body):
    assert rows_if_valid(body) is None


def test_one_record_is_its_row_once():
    rows = record_rows(SEED_RECORD)
    assert rows.shape == (1, len(FEATURES))
    assert rows[0].tolist() == [float(SEED_RECORD[name]) for name in FEATURES]


def test_a_thousand_valid_records_pass_in_one_array():
    rows = batch_rows({"records": [SEED_RECORD] * 1000}, max_records=1000)
    assert rows.shape == (1000, len(FEATURES))
    assert np.array_equal(rows, np.repeat(record_rows(SEED_RECORD), 1000, axis=0))


def test_a_refused_record_raises_the_validation_error_webargs_answers_422():
    with pytest.raises(ValidationError) as refused:
        record_rows({**SEED_RECORD, "catu": 9, "vma": 10 ** 400, "hour": None, "extra": 1})
    assert refused.value.messages == {
        "catu": ["Must be one of the codes 1, 2, 3."],
        "vma": ["Number too large: it does not fit in a float."],
        "hour": ["Field may not be null."], "extra": ["Unknown field."]}


@pytest.mark.parametrize("records, field, message", [
    ([SEED_RECORD, {**SEED_RECORD, "catu": 9}], "catu", "Must be one of the codes 1, 2, 3."),
    ([{**SEED_RECORD, "vma": True}], "vma", "Not a valid integer: send a JSON number without a "
                                            "fractional part."),
    ([{**SEED_RECORD, "lat": 10 ** 400}], "lat", "Number too large: it does not fit in a float."),
])
def test_batch_errors_name_the_record_and_field(client, records, field, message):
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
    assert [without_id(item) for item in batch] == [without_id(item) for item in single]
