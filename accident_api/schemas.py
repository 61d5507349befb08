"""marshmallow schemas of the API, the record schema generated from model.feature_specs.FEATURE_SPECS."""
import math

import marshmallow as ma
from flask import current_app
from flask_smorest import abort
from marshmallow import fields, post_load, pre_load, validate

from accident_api.rows import records_to_rows, typed_record, valid_rows
from model.feature_specs import FEATURE_SPECS, FEATURES

# The user's first sketch payload: /predict must accept it verbatim.
SEED_RECORD = {
    "place": 10, "catu": 3, "sexe": 1, "secu1": 0.0, "year_acc": 2021, "victim_age": 60,
    "catv": 2, "obsm": 1, "motor": 1, "catr": 3, "circ": 2, "surf": 1, "situ": 1, "vma": 50,
    "jour": 7, "mois": 12, "lum": 5, "dep": 77, "com": 77317, "agg_": 2, "int_": 1, "atm": 0,
    "col": 6, "lat": 48.60, "long": 2.89, "hour": 17, "nb_victim": 2, "nb_vehicules": 1,
}

# Messages are ours so that each maps to one reason slug (model_input_rejected_total{reason}).
MSG_MISSING = "Missing data for required field."
MSG_NULL = "Field may not be null."
MSG_INTEGER = "Not a valid integer: send a JSON number without a fractional part."
MSG_NUMBER = "Not a valid number: send a JSON number."
MSG_NOT_FINITE = "Special numeric values (nan or infinity) are not permitted."
MSG_TOO_LARGE = "Number too large: it does not fit in a float."
MSG_RANGE = "Must be between {min} and {max}."
MSG_CODE = "Must be one of the codes {choices}."
MSG_UNKNOWN = "Unknown field."
MSG_EMPTY = "Send at least one record (or tensor)."

REASON_BY_PREFIX = (
    (MSG_MISSING, "missing"), (MSG_NULL, "null"), ("Not a valid", "type"),
    ("Invalid input type", "type"), (MSG_NOT_FINITE, "not_finite"), ("Must be between", "range"),
    ("Must be greater than or equal to", "range"),  # V2's non-negative tensor shape
    ("Number too large", "range"), ("Must be one of", "code"), (MSG_UNKNOWN, "unknown_field"),
    (MSG_EMPTY, "empty"),
)


def reason_for(message: str) -> str:
    """The reason slug of one validation message ('invalid' when none matches)."""
    for prefix, reason in REASON_BY_PREFIX:
        if message.startswith(prefix):
            return reason
    return "invalid"


class IntegralNumber(fields.Integer):
    """An integer that also accepts integral JSON floats (the sketch sends ``"secu1": 0.0``).

    Rejects booleans, strings and fractional numbers, which `fields.Integer` would truncate.
    """

    default_error_messages = {"invalid": MSG_INTEGER}

    def _validated(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid", input=value)
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        return int(value)


class StrictNumber(fields.Float):
    """A finite JSON number; strings such as ``"1.5"`` are rejected rather than coerced."""

    default_error_messages = {"invalid": MSG_NUMBER, "special": MSG_NOT_FINITE,
                              "too_large": MSG_TOO_LARGE}

    def _validated(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.make_error("invalid", input=value)
        if isinstance(value, float) and not math.isfinite(value):
            raise self.make_error("special")
        try:
            return float(value)
        except OverflowError:  # a JSON integer beyond 1.8e308: a range error, not a crash
            raise self.make_error("too_large") from None


_REQUIRED = {"required": MSG_MISSING, "null": MSG_NULL}


def feature_field(spec) -> fields.Field:
    """The marshmallow field for one FeatureSpec: required, typed, range- or code-checked."""
    metadata = {"description": f"{spec.description} (BAAC: {spec.source})",
                "example": SEED_RECORD.get(spec.name, spec.example)}
    if spec.codes is not None:
        check = validate.OneOf(spec.codes, error=MSG_CODE)
    else:
        check = validate.Range(min=spec.minimum, max=spec.maximum, error=MSG_RANGE)
    kind = IntegralNumber if spec.dtype == "int" else StrictNumber
    return kind(required=True, validate=check, metadata=metadata, error_messages=_REQUIRED)


class StrictSchema(ma.Schema):
    """Unknown fields are an error, not silently dropped."""

    class Meta:
        unknown = ma.RAISE


# The record's fields, validated by marshmallow alone (the reference the fast path is tested
# against, tests/test_rows.py).
RecordFieldsSchema = StrictSchema.from_dict(
    {spec.name: feature_field(spec) for spec in FEATURE_SPECS}, name="RecordFieldsSchema")
assert tuple(RecordFieldsSchema().fields) == FEATURES, "schema must follow the feature order"


def _plain_load(many, partial, unknown) -> bool:
    """True for a load with the schema's own settings (how webargs and Nested call it)."""
    return many is None and partial is None and unknown is None


class AccidentRecordSchema(RecordFieldsSchema):
    """One accident: the 28 model features, every one required."""

    def load(self, data, *, many=None, partial=None, unknown=None):
        # A record the vectorised check accepts loads to what the fields would return (typed
        # by typed_record); anything else goes through marshmallow, which names each field
        # and reason.
        if _plain_load(many, partial, unknown) and valid_rows([data]) is not None:
            return typed_record(data)
        return super().load(data, many=many, partial=partial, unknown=unknown)


class PredictBatchRequestSchema(StrictSchema):
    """Several accidents, predicted in one model call; one result per record, same order."""

    records = fields.List(
        fields.Nested(AccidentRecordSchema), required=True,
        validate=validate.Length(min=1, error=MSG_EMPTY), error_messages=_REQUIRED,
        metadata={"description": "Accident records (at most MAX_BATCH_SIZE, default 1000)."})

    @pre_load
    def enforce_batch_cap(self, data, **kwargs):
        """Over the cap is 413 before any record is validated (it is not a field error)."""
        records = data.get("records") if isinstance(data, dict) else None
        cap = current_app.config["MAX_BATCH_SIZE"]
        if isinstance(records, list) and len(records) > cap:
            abort(413, message=f"Too many records: {len(records)} > MAX_BATCH_SIZE={cap}; "
                               f"send at most {cap} per request.")
        return data

    @post_load
    def to_rows(self, data, **kwargs):
        """The validated records as model rows: {"rows": float64 (n, 28)}."""
        return {"rows": records_to_rows(data["records"])}

    def load(self, data, *, many=None, partial=None, unknown=None):
        # The cap first (a 413 before any record is looked at), then the vectorised check of
        # every record at once; only a batch it cannot vouch for costs marshmallow's per-field
        # validation, which then produces the usual 422 body.
        if _plain_load(many, partial, unknown):
            self.enforce_batch_cap(data)
            if type(data) is dict and data.keys() == {"records"}:
                rows = valid_rows(data["records"])
                if rows is not None:
                    return {"rows": rows}
        return super().load(data, many=many, partial=partial, unknown=unknown)


class PredictionSchema(ma.Schema):
    """The prediction for one accident."""

    prediction = fields.Integer(metadata={"description": "1 severe, 0 not severe", "example": 0})
    probability = fields.Float(metadata={"description": "P(severe), in [0, 1]", "example": 0.27})
    label = fields.String(metadata={"description": "severe | not_severe", "example": "not_severe"})
    model_version = fields.String(
        metadata={"description": "version of the model that answered", "example": "3f9a2b7c1d0e"})

    def dump(self, obj, *, many=None):
        # `inference.prediction_items` builds exactly what the fields output (int, float, str,
        # str): such an item is returned as it is; marshmallow's field-by-field dump costs
        # ~8 µs per item, 8 ms for a 1,000-record batch. Anything else is dumped as usual.
        if not (many or self.many) and _is_plain_prediction(obj):
            return obj
        return super().dump(obj, many=many)


_PREDICTION_TYPES = {"prediction": int, "probability": float, "label": str, "model_version": str}


def _is_plain_prediction(obj) -> bool:
    """True for a dict with exactly PredictionSchema's fields, each of its output type."""
    return (type(obj) is dict and obj.keys() == _PREDICTION_TYPES.keys()
            and all(type(obj[name]) is kind for name, kind in _PREDICTION_TYPES.items()))


assert tuple(_PREDICTION_TYPES) == tuple(PredictionSchema().fields)


class PredictBatchResponseSchema(ma.Schema):
    """Predictions in the order of the request's records."""

    predictions = fields.List(fields.Nested(PredictionSchema), metadata={"description": "in order"})
    model_version = fields.String(metadata={"example": "3f9a2b7c1d0e"})


class ModelQuerySchema(ma.Schema):
    """Query string of GET /model."""

    include = fields.String(
        validate=validate.OneOf(["reference"]),
        metadata={"description": "`reference` adds the drift reference bins (large)",
                  "example": "reference"})


class FeatureCardSchema(ma.Schema):
    """One feature of the model card with its valid domain."""

    class Meta:
        unknown = ma.INCLUDE

    name = fields.String(metadata={"example": "catu"})
    kind = fields.String(metadata={"example": "categorical"})
    dtype = fields.String(metadata={"example": "int"})
    description = fields.String(metadata={"example": "user category"})
    source = fields.String(metadata={"example": "usagers.catu"})
    codes = fields.List(fields.Integer(), allow_none=True, metadata={"example": [1, 2, 3]})
    minimum = fields.Float(allow_none=True, metadata={"example": None})
    maximum = fields.Float(allow_none=True, metadata={"example": None})


class ModelCardSchema(ma.Schema):
    """The model card: identity, data source, features and their domains, evaluation metrics."""

    name = fields.String(metadata={"example": "accident-severity-rf"})
    version = fields.String(metadata={"example": "3f9a2b7c1d0e"})
    trained_at = fields.String(metadata={"example": "2025-01-31T12:00:00+00:00"})
    backend = fields.String(metadata={"description": "onnx | sklearn", "example": "onnx"})
    source = fields.Dict(metadata={"example": {"kind": "synthetic", "year": 2021}})
    rows = fields.Dict(metadata={"example": {"train": 8000, "test": 2000}})
    class_balance = fields.Dict(metadata={"example": {"severe": 0.31}})
    hyperparameters = fields.Dict(metadata={"example": {"n_estimators": 100}})
    threshold = fields.Float(metadata={"example": 0.5})
    metrics = fields.Dict(metadata={"example": {"roc_auc": 0.81}})
    libraries = fields.Dict(metadata={"example": {"scikit-learn": "1.9.1"}})
    artifacts = fields.Dict(metadata={"example": {"onnx": {"file": "model.onnx"}}})
    features = fields.List(fields.Nested(FeatureCardSchema))
    reference = fields.Dict(metadata={
        "description": "only with ?include=reference",
        "example": {"vma": {"edges": [30.0, 50.0], "ratios": [0.2, 0.5, 0.3]}}})


class LiveSchema(ma.Schema):
    """The process is up."""

    status = fields.String(metadata={"example": "alive"})


class ReadySchema(ma.Schema):
    """The model is loaded and verified."""

    status = fields.String(metadata={"example": "ready"})
    model = fields.String(metadata={"example": "accident-severity-rf"})
    model_version = fields.String(metadata={"example": "3f9a2b7c1d0e"})
    backend = fields.String(metadata={"example": "onnx"})


# --- Open Inference Protocol (V2) -----------------------------------------------------------
V2_DATATYPES = ("FP64", "FP32", "INT64", "INT32")


class V2Schema(ma.Schema):
    """V2 objects may carry fields this server does not use (clients add them): ignore them."""

    class Meta:
        unknown = ma.EXCLUDE


class V2TensorMetadataSchema(V2Schema):
    """Name, datatype and shape of one tensor (-1 = any size)."""

    name = fields.String(metadata={"example": "input-0"})
    datatype = fields.String(metadata={"example": "FP64"})
    shape = fields.List(fields.Integer(), metadata={"example": [-1, 28]})


class V2ServerMetadataSchema(V2Schema):
    """Server name, version and supported protocol extensions."""

    name = fields.String(metadata={"example": "accident-api"})
    version = fields.String(metadata={"example": "0.1.0"})
    extensions = fields.List(fields.String(), metadata={"example": []})


class V2ModelMetadataSchema(V2Schema):
    """The model's name, versions, platform and tensor signature."""

    name = fields.String(metadata={"example": "accident-severity-rf"})
    versions = fields.List(fields.String(), metadata={"example": ["3f9a2b7c1d0e"]})
    platform = fields.String(metadata={"example": "onnxruntime_onnx"})
    inputs = fields.List(fields.Nested(V2TensorMetadataSchema))
    outputs = fields.List(fields.Nested(V2TensorMetadataSchema))


class V2RequestInputSchema(V2Schema):
    """One input tensor: [N, 28] in feature order, or [N] named after one feature."""

    name = fields.String(required=True, metadata={"example": "input-0"})
    shape = fields.List(fields.Integer(strict=True, validate=validate.Range(min=0)),
                        required=True, metadata={"example": [1, 28]})
    datatype = fields.String(required=True, validate=validate.OneOf(V2_DATATYPES),
                             metadata={"example": "FP64"})
    parameters = fields.Dict(metadata={"example": {}})
    data = fields.Raw(required=True, metadata={
        "description": "row-major values, flat or nested",
        "example": [SEED_RECORD[name] for name in FEATURES]})


class V2RequestOutputSchema(V2Schema):
    """An output the client wants: `predict` or `probability`."""

    name = fields.String(required=True, validate=validate.OneOf(["predict", "probability"]),
                         metadata={"example": "probability"})
    parameters = fields.Dict(metadata={"example": {}})


class V2InferRequestSchema(V2Schema):
    """An inference request of the Open Inference Protocol."""

    id = fields.String(metadata={"example": "req-1"})
    parameters = fields.Dict(metadata={"example": {}})
    inputs = fields.List(fields.Nested(V2RequestInputSchema), required=True,
                         validate=validate.Length(min=1, error=MSG_EMPTY))
    outputs = fields.List(fields.Nested(V2RequestOutputSchema))


class V2ResponseOutputSchema(V2Schema):
    """One output tensor."""

    name = fields.String(metadata={"example": "probability"})
    shape = fields.List(fields.Integer(), metadata={"example": [1]})
    datatype = fields.String(metadata={"example": "FP64"})
    data = fields.List(fields.Raw(), metadata={"example": [0.27]})


class V2InferResponseSchema(V2Schema):
    """An inference response: `predict` (INT64 classes) and `probability` (FP64 P(severe))."""

    model_name = fields.String(metadata={"example": "accident-severity-rf"})
    model_version = fields.String(metadata={"example": "3f9a2b7c1d0e"})
    id = fields.String(metadata={"example": "req-1"})
    outputs = fields.List(fields.Nested(V2ResponseOutputSchema))


class V2ErrorSchema(ma.Schema):
    """The protocol's error object."""

    error = fields.String(metadata={"example": "model 'x' is not served here"})
