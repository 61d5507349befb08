"""Flask hooks feeding the HTTP metrics: every response counted, in-flight tracked."""
from flask import Flask, g, request

from monitoring import metrics

# Endpoints that predict: a response >= 400 from one of them is a failed prediction request.
PREDICTION_ENDPOINTS = frozenset({
    "predictions.predict", "predictions.predict_batch", "v2.model_infer",
    "v2.model_version_infer",
})


def _enter():
    metrics.IN_FLIGHT.inc()
    g.in_flight = True


def _count(response):
    # request.endpoint is None when no rule matched (404, 405): fold into one bounded value
    endpoint = request.endpoint or "unmatched"
    metrics.count_http_response(request.method, endpoint, response.status_code)
    if endpoint in PREDICTION_ENDPOINTS and response.status_code >= 400:
        metrics.record_failed_prediction()
    return response


def _leave(exc=None):
    # teardown runs even when a before_request hook failed: only undo what _enter did
    if g.pop("in_flight", False):
        metrics.IN_FLIGHT.dec()


def init_app(app: Flask) -> None:
    """Register the hooks; call before other extensions so `_enter` runs first."""
    app.before_request(_enter)
    app.after_request(_count)
    app.teardown_request(_leave)
