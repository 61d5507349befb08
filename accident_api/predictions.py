"""Blueprint `predictions`: POST /predict (one accident) and POST /predict/batch."""
from flask.views import MethodView
from flask_smorest import Blueprint

from accident_api import error_docs
from accident_api.inference import current_model, prediction_items
from accident_api.parsing import JsonBodyParser
from accident_api.rows import records_to_rows
from accident_api.schemas import (SEED_RECORD, AccidentRecordSchema, PredictBatchRequestSchema,
                                  PredictBatchResponseSchema, PredictionSchema)


class PredictionsBlueprint(Blueprint):
    # deeply nested or over-long-integer JSON is a 400 like any malformed body, not a 500;
    # a body that is not JSON is a 415
    ARGUMENTS_PARSER = JsonBodyParser()


blp = PredictionsBlueprint("predictions", __name__, description="Accident severity predictions")

# Every error a prediction view answers; 404/405 are the "default" response of every operation.
document_errors = error_docs.document_errors(blp, {
    400: "Malformed JSON body.",
    413: "Body over MAX_CONTENT_LENGTH (or, for a batch, over MAX_BATCH_SIZE records).",
    415: "Content-Type is not application/json.",
    422: "A field is missing, mistyped, out of range, an unknown code, or unknown: `errors` "
         "names each field and why.",
    503: "No model loaded: see /health/ready for the reason.",
})


# Schemas are passed as instances everywhere: given a class, webargs builds a new schema on
# every request (deep-copying the record's 28 fields, ~0.25 ms); an instance is built once.
@blp.route("/predict", endpoint="predict", strict_slashes=False)
class Predict(MethodView):
    @blp.arguments(AccidentRecordSchema(), example=SEED_RECORD)
    @blp.response(200, PredictionSchema(), example={
        "prediction": 0, "probability": 0.27, "label": "not_severe",
        "model_version": "3f9a2b7c1d0e"})
    @document_errors
    def post(self, record):
        """Predict the severity of one accident.

        Also served at `/predict/` (no redirect). Every feature is required and checked against
        its BAAC codes or range; unknown fields are rejected.
        """
        service = current_model()
        prediction = service.predict(records_to_rows([record]))
        return prediction_items(prediction, service.predictor.version)[0]


@blp.route("/predict/batch", endpoint="predict_batch")
class PredictBatch(MethodView):
    @blp.arguments(PredictBatchRequestSchema(), example={"records": [SEED_RECORD, SEED_RECORD]})
    @blp.response(200, PredictBatchResponseSchema())
    @document_errors
    def post(self, body):
        """Predict the severity of several accidents in one model call, results in order."""
        service = current_model()
        prediction = service.predict(body["rows"])  # the schema loads the records as rows
        version = service.predictor.version
        return {"predictions": prediction_items(prediction, version), "model_version": version}
