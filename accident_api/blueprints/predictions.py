"""Blueprint `predictions`: POST /predict (one accident) and POST /predict/batch."""
import numpy as np
from flask.views import MethodView
from flask_smorest import Blueprint

from accident_api.errors import document_errors
from accident_api.http_json import JsonBodyParser
from accident_api.schemas import (EXAMPLE_ID, SEED_RECORD, AccidentRecordSchema,
                                  PredictBatchRequestSchema, PredictBatchResponseSchema,
                                  PredictionSchema)
from accident_api.service import served_model
from model.feature_specs import FEATURES
from monitoring.metrics import LABELS


class PredictionsBlueprint(Blueprint):
    # a body that is not JSON is a 400, one without a JSON Content-Type a 415
    ARGUMENTS_PARSER = JsonBodyParser()


blp = PredictionsBlueprint("predictions", __name__, description="Accident severity predictions")

# Every error a prediction view answers; 404/405 are the "default" response of every operation.
PREDICTION_ERRORS = {
    400: "Malformed JSON body.",
    413: "Body over MAX_CONTENT_LENGTH (or, for a batch, over MAX_BATCH_SIZE records).",
    415: "Content-Type is not application/json.",
    422: "A field is missing, mistyped, out of range, an unknown code, or unknown: `errors` "
         "names each field and why.",
    503: "No model loaded: see /health/ready for the reason.",
}


def prediction_items(served) -> list:
    """One response item per record, in order (`served`: accident_api.service.Served)."""
    return [
        {"prediction": cls, "probability": prob, "label": LABELS[cls],
         "model_version": served.model_version, "prediction_id": prediction_id,
         "imputed": imputed}
        for cls, prob, prediction_id, imputed in zip(
            served.classes.tolist(), served.probabilities.tolist(), served.ids,
            imputed_features(served.imputed))
    ]


def imputed_features(imputed: np.ndarray) -> list:
    """Per row of the (n, 28) mask `imputed`, the names of its imputed features, in order."""
    if not imputed.any():  # the common case
        return [[] for _ in range(len(imputed))]
    return [[FEATURES[column] for column in np.flatnonzero(row).tolist()] for row in imputed]


# Schemas are passed as instances: given a class, webargs builds a new schema per request.
@blp.route("/predict", endpoint="predict", strict_slashes=False)
class Predict(MethodView):
    @blp.arguments(AccidentRecordSchema(), example=SEED_RECORD)
    @blp.response(200, PredictionSchema(), example={
        "prediction": 0, "probability": 0.27, "label": "not_severe",
        "model_version": "3f9a2b7c1d0e", "prediction_id": EXAMPLE_ID, "imputed": []})
    @document_errors(blp, PREDICTION_ERRORS)
    def post(self, rows):
        """Predict the severity of one accident.

        Also served at `/predict/` (no redirect). Every feature is required and checked against
        its BAAC codes or range; unknown fields are rejected. An unknown value is sent as `null`
        (or -1 for vma and atm), imputed as in training and listed in `imputed`.
        """
        return prediction_items(served_model().predict(rows))[0]


@blp.route("/predict/batch", endpoint="predict_batch")
class PredictBatch(MethodView):
    @blp.arguments(PredictBatchRequestSchema(), example={"records": [SEED_RECORD, SEED_RECORD]})
    @blp.response(200, PredictBatchResponseSchema())
    @document_errors(blp, PREDICTION_ERRORS)
    def post(self, rows):
        """Predict the severity of several accidents in one model call, results in order."""
        served = served_model().predict(rows)
        return {"predictions": prediction_items(served), "model_version": served.model_version}
