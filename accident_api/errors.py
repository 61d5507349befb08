"""Error responses: flask-smorest's `{code, status, message, errors}`; under /v2 `{"error": ...}`.

Every error the HTTP layer produces goes through `http_error_response`, so a client never sees
an HTML page or a traceback; genuine server faults are logged and answered with a JSON 500.
"""
from flask import current_app, request
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from accident_api.instrumentation import PREDICTION_ENDPOINTS, count_exception
from accident_api.schemas import reason_for
from model.feature_specs import FEATURES
from monitoring import metrics

# Fields that may label model_input_rejected_total; anything else (client-chosen keys) folds.
KNOWN_FIELDS = frozenset(FEATURES) | {"records", "inputs", "outputs", "id", "parameters", "name",
                                      "shape", "datatype", "data", "_schema"}


def is_v2_path(path: str) -> bool:
    """True for the Open Inference Protocol paths, whose errors use the protocol's format."""
    return path == "/v2" or path.startswith("/v2/")


def is_v2_request() -> bool:
    """True when the current request is on an Open Inference Protocol path."""
    return is_v2_path(request.path)


def _walk(messages, path=()):
    """Yield (path, message) from webargs' nested messages, e.g. (("inputs", "0", "shape"), ...).

    "json" is the location, not part of the client's document, so it is left out of the path.
    """
    if isinstance(messages, dict):
        for key, value in messages.items():
            key = str(key)
            yield from _walk(value, path if key == "json" else (*path, key))
    elif isinstance(messages, (list, tuple)):
        for item in messages:
            yield from _walk(item, path)
    else:
        yield path, str(messages)


def _flatten(messages):
    """Yield (field, message): the innermost field name (batch records are nested by index)."""
    for path, message in _walk(messages):
        yield next((key for key in reversed(path) if not key.isdigit()), "_schema"), message


def _paths(messages):
    """Yield (dotted path, message), e.g. ("inputs.0.shape", "Not a valid list.")."""
    for path, message in _walk(messages):
        yield ".".join(path) or "body", message


def record_rejections(messages) -> None:
    """Count each (field, reason) of a validation failure in model_input_rejected_total."""
    for field, message in set(_flatten(messages)):
        reason = reason_for(message)
        if reason == "unknown_field" or field not in KNOWN_FIELDS:
            field = "_unknown"
        metrics.record_rejection(field, reason)


def _default_message(error: HTTPException) -> str:
    """werkzeug's description, except where ours says more (the body limit's value)."""
    if isinstance(error, RequestEntityTooLarge):
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return f"Request body over MAX_CONTENT_LENGTH={limit} bytes; send a smaller body."
    return error.description or error.name


def _v2_message(error: HTTPException) -> str:
    data = getattr(error, "data", None) or {}
    if "message" in data:
        return str(data["message"])
    if "messages" in data:
        return "; ".join(f"{where}: {message}" for where, message in _paths(data["messages"]))
    return _default_message(error)


def http_error_response(error: HTTPException):
    """The JSON body, status and headers for an HTTP error raised anywhere in the app."""
    data = getattr(error, "data", None) or {}
    headers = data.get("headers", {})
    if error.code == 422 and "messages" in data and request.endpoint in PREDICTION_ENDPOINTS:
        record_rejections(data["messages"])
    if is_v2_request():
        # the protocol reports bad requests as 400 with a single message
        status = 400 if error.code == 422 else error.code
        return {"error": _v2_message(error)}, status, headers
    message = data.get("message")
    if message is None and "messages" in data and error.code != 422:
        message = " ".join(text for _, text in _flatten(data["messages"]))  # "Invalid JSON body."
    payload = {"code": error.code, "status": error.name,
               "message": message or _default_message(error)}
    if "errors" in data or "messages" in data:
        payload["errors"] = data.get("errors", data.get("messages"))
    return payload, error.code, headers


def handle_unexpected(error: Exception):
    """Log a genuine server fault with its traceback; answer with a JSON 500, never the trace."""
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    count_exception(current_app, request.method)
    fault = InternalServerError(description="Internal server error: the fault is logged.")
    return http_error_response(fault)
