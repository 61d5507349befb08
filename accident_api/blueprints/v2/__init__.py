"""Blueprint `v2`: the Open Inference Protocol (KServe V2) REST endpoints.

Errors under /v2 use the protocol's `{"error": "..."}` object (accident_api.errors). Inputs: one
tensor [N, 28] in feature order, or one tensor [N] per feature named after it; outputs
`predict` (INT64 classes) and `probability` (FP64 P(severe)). Tensors travel as JSON or as
binary tensor data (the protocol's `binary_tensor_data` extension, .binary), in both directions.
"""
import numpy as np
from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from accident_api.blueprints.v2 import binary
from accident_api.blueprints.v2.binary import InferenceBodyParser, binary_response, output_tensor
from accident_api.blueprints.v2.schemas import (V2InferRequestSchema, V2InferResponseSchema,
                                                V2ModelMetadataSchema, V2ServerMetadataSchema)
from accident_api.config import MODEL_EXTENSION, VERSION
from accident_api.errors import document_errors
from accident_api.schemas import SEED_RECORD
from accident_api.service import served_model
from accident_api.validation import N_FEATURES
from model.feature_specs import FEATURES

SERVER_NAME = "accident-api"
PLATFORMS = {"onnx": "onnxruntime_onnx", "sklearn": "sklearn"}
EXTENSIONS = ("binary_tensor_data",)


class V2Blueprint(Blueprint):
    # V2 clients (tritonclient among them) post without a JSON Content-Type: parse it anyway
    ARGUMENTS_PARSER = InferenceBodyParser()


blp = V2Blueprint("v2", __name__, url_prefix="/v2",
                  description="Open Inference Protocol (KServe V2) REST endpoints")


V2_ERRORS = {
    400: "Invalid request: malformed JSON or binary tensor data (Inference-Header-Content-"
         "Length, binary_data_size), bad tensor name, shape, datatype or value, or a value "
         "outside its feature's domain; the message names it.",
    404: "No such model (or version) on this server.",
    413: "Body over MAX_CONTENT_LENGTH, or more rows than MAX_BATCH_SIZE.",
    503: "No model loaded.",
}


def v2_errors(*statuses):
    """Document the protocol's error object, with an example, for each status."""
    return document_errors(blp, {status: V2_ERRORS[status] for status in statuses}, v2=True)


def requested_model(name: str, version: str | None = None):
    """The served model if `name` (and `version`) name it, else a V2 error (404, 503)."""
    served = served_model()
    predictor = served.predictor
    if name != predictor.name or version not in (None, predictor.version):
        wanted = name if version is None else f"{name}/{version}"
        abort(404, message=f"model '{wanted}' is not served here: this server serves "
                           f"'{predictor.name}' version '{predictor.version}'")
    return served


@blp.route("", endpoint="server_metadata")
class ServerMetadata(MethodView):
    @blp.response(200, V2ServerMetadataSchema())
    def get(self):
        """Server metadata: name, version, protocol extensions."""
        return {"name": SERVER_NAME, "version": VERSION, "extensions": list(EXTENSIONS)}


@blp.route("/health/live", endpoint="server_live")
class ServerLive(MethodView):
    @blp.response(200, description="Live (empty body, as the protocol asks).")
    def get(self):
        """Server liveness: 200 while the process serves HTTP."""
        return Response(status=200)


@blp.route("/health/ready", endpoint="server_ready")
class ServerReady(MethodView):
    @blp.response(200, description="Ready (empty body).")
    @blp.alt_response(400, success=False, description="Not ready (empty body): no model loaded.")
    def get(self):
        """Server readiness: 200 when the model is loaded, 400 (protocol: 4xx = false) if not."""
        return Response(status=200 if current_app.extensions[MODEL_EXTENSION].ready else 400)


def _metadata(predictor) -> dict:
    return {
        "name": predictor.name, "versions": [predictor.version],
        "platform": PLATFORMS.get(predictor.backend, predictor.backend),
        # one [N, 28] tensor in feature order; one [N] tensor per feature (named after it) is
        # accepted too but not listed, since metadata lists what a client must send
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, N_FEATURES]}],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]},
                    {"name": "probability", "datatype": "FP64", "shape": [-1]},
                    {"name": "prediction_id", "datatype": "BYTES", "shape": [-1]}],
    }


@blp.route("/models/<string:name>", endpoint="model_metadata")
@blp.route("/models/<string:name>/versions/<string:version>", endpoint="model_version_metadata")
class ModelMetadata(MethodView):
    @blp.response(200, V2ModelMetadataSchema())
    @v2_errors(404, 503)
    def get(self, name, version=None):
        """Model metadata: inputs are either one [N, 28] tensor or one [N] tensor per feature."""
        return _metadata(requested_model(name, version).predictor)


@blp.route("/models/<string:name>/ready", endpoint="model_ready")
@blp.route("/models/<string:name>/versions/<string:version>/ready",
           endpoint="model_version_ready")
class ModelReady(MethodView):
    @blp.response(200, description="The model is ready (empty body).")
    @blp.alt_response(400, success=False, description="Not ready (empty body): no model loaded.")
    @v2_errors(404)
    def get(self, name, version=None):
        """Model readiness: 200 when this model is loaded and verified, 400 (4xx = not ready)."""
        if not current_app.extensions[MODEL_EXTENSION].ready:
            # the protocol's readiness is the status alone, as for /v2/health/ready
            return Response(status=400)
        requested_model(name, version)
        return Response(status=200)


@blp.route("/models/<string:name>/infer", endpoint="model_infer")
@blp.route("/models/<string:name>/versions/<string:version>/infer",
           endpoint="model_version_infer")
class ModelInfer(MethodView):
    @blp.arguments(V2InferRequestSchema(), example={
        "id": "req-1", "inputs": [{"name": "input-0", "shape": [1, N_FEATURES], "datatype": "FP64",
                                   "data": [SEED_RECORD[f] for f in FEATURES]}]})
    @blp.response(200, V2InferResponseSchema())
    @v2_errors(400, 404, 413, 503)
    @blp.doc(**binary.OPENAPI)
    def post(self, infer, name, version=None):
        """Inference: `predict`, `probability` and `prediction_id` for each row, in order.

        `prediction_id` (BYTES) is what POST /feedback takes back with the true outcome.
        """
        served = requested_model(name, version)
        predictor = served.predictor
        prediction = served.predict(infer.rows)
        values = {"predict": ("INT64", prediction.classes),
                  "probability": ("FP64", prediction.probabilities),
                  "prediction_id": ("BYTES", np.array(prediction.ids, dtype=object))}
        tensors, chunks = zip(*(output_tensor(output.name, *values[output.name], output.binary)
                                for output in infer.outputs))
        response = {"model_name": predictor.name, "model_version": predictor.version,
                    "outputs": list(tensors)}
        if infer.id is not None:
            response["id"] = infer.id
        binary_parts = [chunk for chunk in chunks if chunk is not None]
        if binary_parts:
            return binary_response(V2InferResponseSchema().dump(response), binary_parts)
        return response
