"""marshmallow schemas of the REST API; the record schema is generated from FEATURE_SPECS."""
import marshmallow as ma
from flask import current_app
from marshmallow import fields, validate

from accident_api.validation import batch_rows, record_rows
from model.feature_specs import FEATURE_SPECS, FEATURES

# The user's first sketch payload: /predict must accept it verbatim.
SEED_RECORD = {
    "place": 10, "catu": 3, "sexe": 1, "secu1": 0.0, "year_acc": 2021, "victim_age": 60,
    "catv": 2, "obsm": 1, "motor": 1, "catr": 3, "circ": 2, "surf": 1, "situ": 1, "vma": 50,
    "jour": 7, "mois": 12, "lum": 5, "dep": 77, "com": 77317, "agg_": 2, "int_": 1, "atm": 0,
    "col": 6, "lat": 48.60, "long": 2.89, "hour": 17, "nb_victim": 2, "nb_vehicules": 1,
}
# The features whose BAAC "not given" code (-1) is accepted as an unknown besides null.
UNKNOWN_CODED = [spec.name for spec in FEATURE_SPECS if spec.unknown_code is not None]


# A prediction id as the service issues them (UUIDv7: unique, and ordered by serving time).
EXAMPLE_ID = "019b0a3c-5f2e-7a41-9c1d-8e2f4b6a7c90"


def feature_field(spec) -> fields.Field:
    """The documented field of one FeatureSpec: required, typed, its codes or range, nullable.

    The field documents the feature; `accident_api.validation` checks it (the schemas below
    load through it). `null` (and the feature's `unknown_code`) is an explicit unknown, imputed
    like training imputed a missing value; the key itself stays required.
    """
    unknown = "null" if spec.unknown_code is None else f"null or {spec.unknown_code:g}"
    metadata = {"description": f"{spec.description} (BAAC: {spec.source}). Unknown: send "
                               f"{unknown}; it is imputed with the model's training fill value "
                               "and listed in the response's `imputed`.",
                "example": SEED_RECORD.get(spec.name, spec.example)}
    if spec.codes is not None:
        metadata["enum"] = [*spec.codes, None]  # OpenAPI 3.0: a nullable enum lists null
    else:
        number = int if spec.dtype == "int" else float
        metadata.update(minimum=number(spec.minimum), maximum=number(spec.maximum))
    kind = fields.Integer if spec.dtype == "int" else fields.Float
    return kind(required=True, allow_none=True, metadata=metadata)


class StrictSchema(ma.Schema):
    """Unknown fields are an error, not silently dropped."""

    class Meta:
        unknown = ma.RAISE


class AccidentRecordSchema(StrictSchema.from_dict(
        {spec.name: feature_field(spec) for spec in FEATURE_SPECS}, name="AccidentRecord")):
    """One accident: the 28 model features, every one required."""

    def load(self, data, *, many=None, partial=None, unknown=None):
        """The record's model row, (1, 28) float64 (accident_api.validation)."""
        return record_rows(data)


assert tuple(AccidentRecordSchema().fields) == FEATURES, "schema must follow the feature order"


class PredictBatchRequestSchema(StrictSchema):
    """Several accidents, predicted in one model call; one result per record, same order."""

    records = fields.List(
        fields.Nested(AccidentRecordSchema), required=True,
        metadata={"description": "Accident records (at most MAX_BATCH_SIZE, default 1000).",
                  "minItems": 1})

    def load(self, data, *, many=None, partial=None, unknown=None):
        """The records' model rows, (n, 28) float64 in order (accident_api.validation)."""
        return batch_rows(data, current_app.config["MAX_BATCH_SIZE"])


class PredictionSchema(ma.Schema):
    """The prediction for one accident."""

    prediction = fields.Integer(metadata={"description": "1 severe, 0 not severe", "example": 0})
    probability = fields.Float(metadata={"description": "P(severe), in [0, 1]", "example": 0.27})
    label = fields.String(metadata={"description": "severe | not_severe", "example": "not_severe"})
    model_version = fields.String(
        metadata={"description": "version of the model that answered", "example": "3f9a2b7c1d0e"})
    prediction_id = fields.String(metadata={
        "description": "this prediction's id: send it back with the true outcome to POST "
                       "/feedback", "example": EXAMPLE_ID})
    imputed = fields.List(fields.String(metadata={"enum": list(FEATURES)}), metadata={
        "description": "features sent as unknown (null, or the BAAC code -1 for "
                       f"{' and '.join(UNKNOWN_CODED)}) and imputed with the model's training "
                       "fill value, in feature order; empty when none",
        "example": ["vma"]})


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
    split = fields.Dict(metadata={"description": "how the rows were split: seed, shares, the "
                                                 "years fit on and tested on", "example": {
        "seed": 42, "test_size": 0.2, "calibration_size": 0.2}})
    metrics_by_test_year = fields.Dict(metadata={
        "description": "with a test year: the metrics of the model on that later year",
        "example": {}})
    calibration = fields.Dict(metadata={
        "description": "the calibration map's quality: ECE and Brier score before and after",
        "example": {"after": {"ece": 0.019, "brier": 0.187}}})
    imputation = fields.Dict(metadata={
        "description": "the value each feature's unknowns are replaced with (training split's "
                       "median or mode)", "example": {"vma": 50.0}})
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
