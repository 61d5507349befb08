"""Blueprint `feedback`: POST /feedback, the true outcome of served predictions.

A label is joined to its prediction in the prediction log and stored once, committed before
the answer; a newly recorded one is counted in model_feedback_total by confusion cell, which
Prometheus turns into realised accuracy, precision, recall and F1 (monitoring.quality).
"""
from datetime import timezone

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import fields, validate

from accident_api.errors import document_errors
from accident_api.http_json import JsonBodyParser
from accident_api.schemas import EXAMPLE_ID, StrictSchema
from accident_api.service import prediction_log
from monitoring import quality
from monitoring.metrics import LABELS
from monitoring.prediction_log import Label, utc_now


class FeedbackBlueprint(Blueprint):
    # a body that is not JSON is a 400, one without a JSON Content-Type a 415
    ARGUMENTS_PARSER = JsonBodyParser()


blp = FeedbackBlueprint("feedback", __name__, description="True outcomes of served predictions")

ACTUAL = {0: 0, 1: 1, "not_severe": 0, "severe": 1}
# The HTTP status of each outcome of one label
STATUS_CODES = {"recorded": 200, "already_recorded": 200, "unknown": 404, "purged": 404,
                "conflict": 409}


class Outcome(fields.Field):
    """The true outcome: 1 or "severe" (killed or hospitalised), 0 or "not_severe"."""

    default_error_messages = {"invalid": 'Must be 0, 1, "not_severe" or "severe".'}

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) in (int, str) and value in ACTUAL:  # not True/False
            return ACTUAL[value]
        raise self.make_error("invalid")


class FeedbackItemSchema(StrictSchema):
    """The true outcome of one prediction."""

    prediction_id = fields.String(required=True, validate=validate.Length(equal=36), metadata={
        "description": "the `prediction_id` of a /predict, /predict/batch or V2 answer",
        "example": EXAMPLE_ID})
    actual = Outcome(required=True, metadata={
        "description": "what happened: 1 or `severe` (a victim killed or hospitalised), 0 or "
                       "`not_severe`", "enum": [0, 1, "not_severe", "severe"],
        "example": "severe"})
    observed_at = fields.AwareDateTime(load_default=None, metadata={
        "description": "when the outcome was known (ISO 8601 with a UTC offset); stored as "
                       "given, for analysis", "example": "2026-12-09T14:30:00+01:00"})


class FeedbackRequestSchema(FeedbackItemSchema):
    """One label, or a list of at most MAX_BATCH_SIZE labels."""

    def load(self, data, *, many=None, partial=None, unknown=None):
        """(labels, sent_as_list); a refusal is counted in model_feedback_rejected_total."""
        as_list = isinstance(data, list)
        cap = current_app.config["MAX_BATCH_SIZE"]
        if as_list and len(data) > cap:
            abort(413, message=f"Too many labels: {len(data)} > MAX_BATCH_SIZE={cap}; send at "
                               f"most {cap} per request.")
        try:
            items = FeedbackItemSchema(many=True).load(data) if as_list \
                else [FeedbackItemSchema().load(data)]
        except ma.ValidationError as error:
            quality.record_feedback_rejected("invalid", len(data) if as_list else 1)
            raise error
        if as_list and not items:
            quality.record_feedback_rejected("invalid")
            raise ma.ValidationError(["Send at least one label."])
        labels = [Label(item["prediction_id"], item["actual"],
                        item["observed_at"] and item["observed_at"].astimezone(
                            timezone.utc).replace(tzinfo=None)) for item in items]
        return labels, as_list


class FeedbackResultSchema(ma.Schema):
    """What became of one label."""

    prediction_id = fields.String(metadata={"example": EXAMPLE_ID})
    code = fields.Integer(metadata={"description": "200, 404 (unknown or purged id) or 409 "
                                                   "(another label recorded)", "example": 200})
    status = fields.String(metadata={
        "description": "recorded | already_recorded | unknown | purged | conflict",
        "example": "recorded"})
    actual = fields.String(metadata={"description": "the label sent", "example": "severe"})
    recorded = fields.String(allow_none=True, metadata={
        "description": "the label on record (already_recorded, conflict)", "example": None})
    predicted = fields.String(allow_none=True, metadata={
        "description": "what the model predicted", "example": "not_severe"})
    model_version = fields.String(allow_none=True, metadata={"example": "3f9a2b7c1d0e"})


class FeedbackResponseSchema(ma.Schema):
    """One result per label, in order, and how many ended each way."""

    results = fields.List(fields.Nested(FeedbackResultSchema))
    summary = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "example": {"recorded": 1, "already_recorded": 0, "unknown": 0, "purged": 0,
                    "conflict": 0}})


def _label(code):
    return None if code is None else LABELS[code]


def _result(item) -> dict:
    return {"prediction_id": item.prediction_id, "code": STATUS_CODES[item.status],
            "status": item.status, "actual": _label(item.actual),
            "recorded": _label(item.recorded_actual), "predicted": _label(item.predicted),
            "model_version": item.model_version}


@blp.route("/feedback", endpoint="feedback")
class Feedback(MethodView):
    @blp.arguments(FeedbackRequestSchema(), example={"prediction_id": EXAMPLE_ID,
                                                     "actual": "severe"})
    @blp.response(200, FeedbackResponseSchema())
    @document_errors(blp, {
        400: "Malformed JSON body.",
        404: "One label sent alone: no such prediction in the log (unknown, or purged after "
             "PREDICTION_LOG_RETENTION_DAYS). In a list, per item (`code`).",
        409: "One label sent alone: another label is already recorded for this prediction "
             "(the message names it). In a list, per item (`code`).",
        413: "A list over MAX_BATCH_SIZE labels, or a body over MAX_CONTENT_LENGTH.",
        415: "Content-Type is not application/json.",
        422: "A field is missing, mistyped or unknown: `errors` names each.",
        503: "No prediction log (PREDICTION_LOG=0), or its database cannot be reached."})
    def post(self, request):
        """Record the true outcome of one prediction, or of a list of them.

        The same label for the same prediction twice is accepted once (`already_recorded`);
        another label for it is a conflict. Labels are committed before the answer.
        """
        labels, as_list = request
        now = utc_now()
        try:
            recorded = prediction_log().record_feedback(labels, now)
        except sa.exc.SQLAlchemyError as exc:
            abort(503, message=f"The prediction log cannot be reached: {str(exc).splitlines()[0]}")
        quality.record_feedback(recorded, now)
        results = [_result(item) for item in recorded]
        if not as_list and results[0]["code"] != 200:
            item = results[0]
            why = {"unknown": "no such prediction in the log",
                   "purged": "the prediction is older than PREDICTION_LOG_RETENTION_DAYS and "
                             "was purged",
                   "conflict": f"another label is already recorded for it: {item['recorded']}"}
            abort(item["code"], message=f"prediction {item['prediction_id']}: "
                                        f"{why[item['status']]}")
        summary = {status: 0 for status in STATUS_CODES}
        for item in results:
            summary[item["status"]] += 1
        return {"results": results, "summary": summary}
