"""marshmallow schemas of the Open Inference Protocol (V2) endpoints.

The request schema documents an inference request; loading it parses and checks the request
in `accident_api.blueprints.v2.tensors`, which answers every mistake with the protocol's 400.
"""
import marshmallow as ma
from flask import current_app
from marshmallow import fields

from accident_api.blueprints.v2.tensors import OUTPUT_NAMES, V2_DATATYPES, parse_request
from accident_api.schemas import SEED_RECORD
from model.feature_specs import FEATURES


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
    shape = fields.List(fields.Integer(metadata={"minimum": 0}), required=True,
                        metadata={"example": [1, 28]})
    datatype = fields.String(required=True, metadata={"enum": list(V2_DATATYPES),
                                                      "example": "FP64"})
    parameters = fields.Dict(metadata={
        "description": "`binary_data_size`: the tensor is sent as that many bytes of binary "
                       "tensor data after the JSON (instead of `data`)",
        "example": {}})
    data = fields.Raw(metadata={
        "description": "row-major values, flat or nested (required unless the tensor is "
                       "binary: `parameters.binary_data_size`)",
        "example": [SEED_RECORD[name] for name in FEATURES]})


class V2RequestOutputSchema(V2Schema):
    """An output the client wants: `predict` or `probability`."""

    name = fields.String(required=True, metadata={"enum": list(OUTPUT_NAMES),
                                                  "example": "probability"})
    parameters = fields.Dict(metadata={
        "description": "`binary_data`: true for this output as binary tensor data (overrides "
                       "the request's `binary_data_output`)",
        "example": {"binary_data": False}})


class V2InferRequestSchema(V2Schema):
    """An inference request of the Open Inference Protocol."""

    id = fields.String(metadata={"example": "req-1"})
    parameters = fields.Dict(metadata={
        "description": "`binary_data_output`: true for every output as binary tensor data",
        "example": {}})
    inputs = fields.List(fields.Nested(V2RequestInputSchema), required=True,
                         metadata={"minItems": 1})
    outputs = fields.List(fields.Nested(V2RequestOutputSchema))

    def load(self, data, *, many=None, partial=None, unknown=None):
        """The parsed request (tensors.InferRequest) from the parser's binary.InferenceBody."""
        return parse_request(data, current_app.config["MAX_BATCH_SIZE"])


class V2ResponseOutputSchema(V2Schema):
    """One output tensor."""

    name = fields.String(metadata={"example": "probability"})
    shape = fields.List(fields.Integer(), metadata={"example": [1]})
    datatype = fields.String(metadata={"example": "FP64"})
    parameters = fields.Dict(metadata={
        "description": "`binary_data_size`: the output is that many bytes of binary tensor "
                       "data after the JSON header (instead of `data`)",
        "example": {"binary_data_size": 8}})
    data = fields.List(fields.Raw(), metadata={"example": [0.27]})


class V2InferResponseSchema(V2Schema):
    """An inference response: `predict` (INT64 classes) and `probability` (FP64 P(severe))."""

    model_name = fields.String(metadata={"example": "accident-severity-rf"})
    model_version = fields.String(metadata={"example": "3f9a2b7c1d0e"})
    id = fields.String(metadata={"example": "req-1"})
    outputs = fields.List(fields.Nested(V2ResponseOutputSchema))
