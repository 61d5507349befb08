"""Record schema generated from FEATURE_SPECS: every field required, typed, range/code-checked."""
import marshmallow as ma
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from accident_api.schemas import (SEED_RECORD, AccidentRecordSchema, IntegralNumber,
                                  PredictBatchResponseSchema, PredictionSchema, StrictNumber,
                                  reason_for)
from model.features import FEATURE_SPECS, FEATURES

SCHEMA = AccidentRecordSchema()
INT_FEATURE = next(s for s in FEATURE_SPECS if s.dtype == "int" and s.codes is None)
FLOAT_FEATURE = next(s for s in FEATURE_SPECS if s.dtype == "float")
CODED = next(s for s in FEATURE_SPECS if s.codes is not None)


def errors_of(record):
    with pytest.raises(ma.ValidationError) as info:
        SCHEMA.load(record)
    return info.value.messages


def test_fields_follow_feature_order_and_types():
    assert tuple(SCHEMA.fields) == FEATURES
    for spec in FEATURE_SPECS:
        field = SCHEMA.fields[spec.name]
        assert field.required
        assert isinstance(field, IntegralNumber if spec.dtype == "int" else StrictNumber)
        assert field.metadata["description"] and "example" in field.metadata


def test_seed_payload_loads_with_numbers_typed():
    loaded = SCHEMA.load(SEED_RECORD)
    assert loaded["secu1"] == 0 and isinstance(loaded["secu1"], int)  # sent as 0.0
    assert isinstance(loaded["lat"], float)


@pytest.mark.parametrize("name", FEATURES)
def test_each_missing_field_is_named(name):
    record = {k: v for k, v in SEED_RECORD.items() if k != name}
    assert errors_of(record) == {name: ["Missing data for required field."]}


@pytest.mark.parametrize("value", ["3", True, None, [1], {"a": 1}])
def test_non_numbers_are_type_errors(value):
    messages = errors_of({**SEED_RECORD, "catu": value})
    assert list(messages) == ["catu"]
    assert reason_for(messages["catu"][0]) in ("type", "null")


def test_fractional_value_for_an_integer_feature_is_refused_not_truncated():
    messages = errors_of({**SEED_RECORD, INT_FEATURE.name: 3.5})
    assert reason_for(messages[INT_FEATURE.name][0]) == "type"


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_are_refused(value):
    messages = errors_of({**SEED_RECORD, FLOAT_FEATURE.name: value})
    assert reason_for(messages[FLOAT_FEATURE.name][0]) in ("not_finite", "type")


@pytest.mark.parametrize("spec", FEATURE_SPECS, ids=lambda s: s.name)
@pytest.mark.parametrize("sign", [1, -1], ids=["positive", "negative"])
def test_integers_too_large_for_a_float_are_range_errors(spec, sign):
    # float(10**400) raises OverflowError: it must become this field's validation error
    messages = errors_of({**SEED_RECORD, spec.name: sign * 10 ** 400})
    assert list(messages) == [spec.name]
    assert reason_for(messages[spec.name][0]) in ("range", "code")


NUMERIC = [s for s in FEATURE_SPECS if s.codes is None]
CATEGORICAL = [s for s in FEATURE_SPECS if s.codes is not None]


@pytest.mark.parametrize("spec", NUMERIC, ids=lambda s: s.name)
def test_out_of_range_numbers_are_refused(spec):
    messages = errors_of({**SEED_RECORD, spec.name: spec.maximum + 1})
    assert messages[spec.name] == [f"Must be between {spec.minimum} and {spec.maximum}."]
    assert reason_for(messages[spec.name][0]) == "range"


@pytest.mark.parametrize("spec", CATEGORICAL, ids=lambda s: s.name)
def test_unknown_codes_are_refused(spec):
    messages = errors_of({**SEED_RECORD, spec.name: max(spec.codes) + 1000})
    assert reason_for(messages[spec.name][0]) == "code"


def test_unknown_fields_are_refused():
    assert errors_of({**SEED_RECORD, "speed": 3}) == {"speed": ["Unknown field."]}


@pytest.mark.parametrize("message, reason", [
    ("Missing data for required field.", "missing"), ("Unknown field.", "unknown_field"),
    ("Not a valid list.", "type"), ("Invalid input type.", "type"),
    ("Must be between 1 and 2.", "range"), ("Must be one of the codes 1.", "code"),
    ("Field may not be null.", "null"), ("something else", "invalid"),
    ("Number too large: it does not fit in a float.", "range"),
    ("Must be greater than or equal to 0.", "range"),
])
def test_reason_slugs(message, reason):
    assert reason_for(message) == reason


PREDICTION_ITEMS = st.fixed_dictionaries({
    "prediction": st.sampled_from([0, 1]), "probability": st.floats(0, 1),
    "label": st.sampled_from(["severe", "not_severe"]),
    "model_version": st.text(min_size=1, max_size=16)})


@given(PREDICTION_ITEMS)
def test_a_prediction_item_dumps_exactly_as_marshmallow_would(item):
    schema = PredictionSchema()
    reference = ma.Schema.dump(schema, item)  # marshmallow's own field-by-field dump
    assert schema.dump(item) == reference
    batch = {"predictions": [item, item], "model_version": item["model_version"]}
    assert PredictBatchResponseSchema().dump(batch) == {**batch, "predictions": [reference] * 2}


@pytest.mark.parametrize("item", [
    {"prediction": np.int64(1), "probability": np.float32(0.5), "label": "severe",
     "model_version": "v"},
    {"prediction": True, "probability": 0.5, "label": "severe", "model_version": "v"},
    {"prediction": 1, "probability": 0.5, "label": "severe", "model_version": "v", "extra": 1},
])
def test_anything_else_is_dumped_by_marshmallow(item):
    dumped = PredictionSchema().dump(item)
    assert dumped == ma.Schema.dump(PredictionSchema(), item)
    assert "extra" not in dumped and all(type(v) in (int, float, str) for v in dumped.values())
