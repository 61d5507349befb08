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


def is_unknown(spec, value) -> bool:
    """`value` is an explicit unknown for `spec`: null, or its BAAC "not given" code where
    that is not one of the feature's values (vma and atm: -1)."""
    return value is None or (type(value) in (int, float) and spec.name in ("vma", "atm")
                             and value == -1)


def value_reason(spec, value):
    """The reason slug `value` is refused for `spec`, or None when it is valid."""
    if is_unknown(spec, value):
        return None
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
             "unknown", "null_or_minus_one"]


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
        elif mutation == "null_or_minus_one":  # an explicit unknown where -1 is no code
            record[spec.name] = draw(st.sampled_from([None, -1, -1.0]))
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
        expected = [[math.nan if is_unknown(spec, record[spec.name]) else float(record[spec.name])
                     for spec in FEATURE_SPECS] for record in batch]
        assert np.array_equal(rows, np.array(expected), equal_nan=True)
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
    assert refused.value.messages == {  # hour: null is an unknown, not an error
        "catu": ["Must be one of the codes 1, 2, 3."],
        "vma": ["Number too large: it does not fit in a float."], "extra": ["Unknown field."]}


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


# --- explicit unknowns: null for every feature, -1 where BAAC's "not given" is no code -------

MINUS_ONE_IS_A_CODE = ("place", "sexe", "secu1", "obsm", "motor", "circ", "surf", "situ", "col")
MINUS_ONE_IS_UNKNOWN = ("vma", "atm")
MINUS_ONE_IS_VALID = ("lat", "long")  # a coordinate, not a code
MINUS_ONE_IS_REFUSED = tuple(name for name in FEATURES if name not in
                             MINUS_ONE_IS_A_CODE + MINUS_ONE_IS_UNKNOWN + MINUS_ONE_IS_VALID)


def seed_row_with(**values) -> list:
    return [values.get(name, float(SEED_RECORD[name])) for name in FEATURES]


@pytest.mark.parametrize("name", FEATURES)
def test_null_is_an_unknown_for_every_feature(name):
    rows = record_rows({**SEED_RECORD, name: None})
    assert np.array_equal(rows[0], seed_row_with(**{name: math.nan}), equal_nan=True)
    assert problems({**SEED_RECORD, name: None}) == ({}, set())


@pytest.mark.parametrize("name", MINUS_ONE_IS_UNKNOWN)
@pytest.mark.parametrize("value", [-1, -1.0])
def test_minus_one_is_an_unknown_where_it_is_no_code(name, value):
    rows = record_rows({**SEED_RECORD, name: value})
    assert np.array_equal(rows[0], seed_row_with(**{name: math.nan}), equal_nan=True)


@pytest.mark.parametrize("name", MINUS_ONE_IS_A_CODE + MINUS_ONE_IS_VALID)
def test_minus_one_stays_a_value_where_it_is_one(name):
    assert record_rows({**SEED_RECORD, name: -1})[0].tolist() == seed_row_with(**{name: -1.0})


@pytest.mark.parametrize("name", MINUS_ONE_IS_REFUSED)
def test_minus_one_is_refused_where_it_means_nothing(name):
    reasons = problems({**SEED_RECORD, name: -1})[1]
    spec = FEATURE_SPECS[FEATURES.index(name)]
    assert reasons == {(name, "code" if spec.codes is not None else "range")}
    with pytest.raises(ValidationError):
        record_rows({**SEED_RECORD, name: -1})


def test_every_feature_is_in_exactly_one_minus_one_rule():
    assert sorted(MINUS_ONE_IS_A_CODE + MINUS_ONE_IS_UNKNOWN + MINUS_ONE_IS_VALID
                  + MINUS_ONE_IS_REFUSED) == sorted(FEATURES)
    assert {s.name for s in FEATURE_SPECS if s.unknown_code is not None} == set(
        MINUS_ONE_IS_UNKNOWN)


def test_a_missing_key_is_refused_even_beside_unknowns():
    record = {**SEED_RECORD, "vma": None, "atm": -1}
    del record["hour"]
    with pytest.raises(ValidationError) as refused:
        record_rows(record)
    assert refused.value.messages == {"hour": ["Missing data for required field."]}


@pytest.mark.parametrize("value, reason", [(math.nan, "not_finite"), (-2, "range"),
                                           (-1.5, "type"), ("-1", "type"), (False, "type")])
def test_only_null_and_minus_one_are_unknowns(value, reason):
    """A NaN number, another negative or -1 as text is still refused, even for vma."""
    assert problems({**SEED_RECORD, "vma": value})[1] == {("vma", reason)}
    assert rows_if_valid([{**SEED_RECORD, "vma": value}]) is None


def test_a_batch_keeps_each_records_unknowns_in_place():
    records = [SEED_RECORD, {**SEED_RECORD, "vma": -1, "lat": None}, {**SEED_RECORD, "atm": None}]
    rows = batch_rows({"records": records}, max_records=10)
    expected = [seed_row_with(), seed_row_with(vma=math.nan, lat=math.nan),
                seed_row_with(atm=math.nan)]
    assert np.array_equal(rows, np.array(expected), equal_nan=True)
