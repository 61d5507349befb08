"""Record schema generated from FEATURE_SPECS: every field required, typed, range/code-checked,
each refusal with its exact reason."""
import marshmallow as ma
import numpy as np
import pytest

from accident_api.schemas import SEED_RECORD, AccidentRecordSchema
from accident_api.validation import problems
from model.features import FEATURE_SPECS, FEATURES

# a refusal is counted: the metrics exist once an app was built
pytestmark = pytest.mark.usefixtures("app")

SCHEMA = AccidentRecordSchema()
INT_FEATURE = next(s for s in FEATURE_SPECS if s.dtype == "int" and s.codes is None)
FLOAT_FEATURE = next(s for s in FEATURE_SPECS if s.dtype == "float")
CODED = next(s for s in FEATURE_SPECS if s.codes is not None)


def errors_of(record):
    with pytest.raises(ma.ValidationError) as info:
        SCHEMA.load(record)
    return info.value.messages


def reason_of(record, field):
    """The reason slug the one refused `field` of `record` is counted under."""
    reasons = dict(problems(record)[1])
    assert list(reasons) == [field], reasons
    return reasons[field]


def test_fields_follow_feature_order_and_types():
    assert tuple(SCHEMA.fields) == FEATURES
    for spec in FEATURE_SPECS:
        field = SCHEMA.fields[spec.name]
        assert field.required and field.allow_none  # the key is required, null means unknown
        assert isinstance(field, ma.fields.Integer if spec.dtype == "int" else ma.fields.Float)
        assert field.metadata["description"] and "example" in field.metadata


def test_seed_payload_loads_as_its_model_row():
    row = SCHEMA.load(SEED_RECORD)
    assert row.shape == (1, len(FEATURES))
    assert row[0, FEATURES.index("secu1")] == 0.0  # sent as 0.0


@pytest.mark.parametrize("name", FEATURES)
def test_each_missing_field_is_named(name):
    record = {k: v for k, v in SEED_RECORD.items() if k != name}
    assert errors_of(record) == {name: ["Missing data for required field."]}


@pytest.mark.parametrize("value", ["3", True, [1], {"a": 1}])
def test_non_numbers_are_type_errors(value):
    record = {**SEED_RECORD, "catu": value}
    assert errors_of(record) == {"catu": ["Not a valid integer: send a JSON number without a "
                                          "fractional part."]}
    assert reason_of(record, "catu") == "type"


def test_null_loads_as_an_unknown():
    row = SCHEMA.load({**SEED_RECORD, "lat": None})
    assert np.isnan(row[0, FEATURES.index("lat")])
    assert np.isnan(row).sum() == 1


def test_the_documented_field_says_how_to_send_an_unknown():
    vma, catu = SCHEMA.fields["vma"].metadata, SCHEMA.fields["catu"].metadata
    assert "Unknown: send null or -1;" in vma["description"]
    assert "Unknown: send null;" in catu["description"]
    assert catu["enum"] == [1, 2, 3, None]  # OpenAPI 3.0: a nullable enum lists null


def test_fractional_value_for_an_integer_feature_is_refused_not_truncated():
    record = {**SEED_RECORD, INT_FEATURE.name: 3.5}
    assert errors_of(record) == {INT_FEATURE.name: ["Not a valid integer: send a JSON number "
                                                    "without a fractional part."]}
    assert reason_of(record, INT_FEATURE.name) == "type"


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_are_refused(value):
    record = {**SEED_RECORD, FLOAT_FEATURE.name: value}
    assert errors_of(record) == {FLOAT_FEATURE.name: [
        "Special numeric values (nan or infinity) are not permitted."]}
    assert reason_of(record, FLOAT_FEATURE.name) == "not_finite"


@pytest.mark.parametrize("spec", FEATURE_SPECS, ids=lambda s: s.name)
@pytest.mark.parametrize("sign", [1, -1], ids=["positive", "negative"])
def test_integers_too_large_for_a_float_are_range_errors(spec, sign):
    # float(10**400) raises OverflowError: it must become this field's validation error
    record = {**SEED_RECORD, spec.name: sign * 10 ** 400}
    assert errors_of(record) == {spec.name: ["Number too large: it does not fit in a float."]}
    assert reason_of(record, spec.name) == "range"


NUMERIC = [s for s in FEATURE_SPECS if s.codes is None]
CATEGORICAL = [s for s in FEATURE_SPECS if s.codes is not None]


@pytest.mark.parametrize("spec", NUMERIC, ids=lambda s: s.name)
def test_out_of_range_numbers_are_refused(spec):
    record = {**SEED_RECORD, spec.name: spec.maximum + 1}
    assert errors_of(record) == {spec.name: [f"Must be between {spec.minimum} and "
                                             f"{spec.maximum}."]}
    assert reason_of(record, spec.name) == "range"


@pytest.mark.parametrize("spec", CATEGORICAL, ids=lambda s: s.name)
def test_unknown_codes_are_refused(spec):
    record = {**SEED_RECORD, spec.name: max(spec.codes) + 1000}
    assert errors_of(record) == {spec.name: [
        f"Must be one of the codes {', '.join(str(c) for c in spec.codes)}."]}
    assert reason_of(record, spec.name) == "code"


def test_unknown_fields_are_refused():
    assert errors_of({**SEED_RECORD, "speed": 3}) == {"speed": ["Unknown field."]}
    assert problems({**SEED_RECORD, "speed": 3})[1] == {("_unknown", "unknown_field")}


def test_a_missing_field_is_missing():
    record = {k: v for k, v in SEED_RECORD.items() if k != "vma"}
    assert reason_of(record, "vma") == "missing"
