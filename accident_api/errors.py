"""Error responses, produced and documented: flask-smorest's `{code, status, message, errors}`;
under /v2 the Open Inference Protocol's `{"error": ...}`.

Every error the HTTP layer produces goes through `http_error_response`, so a client never sees
an HTML page or a traceback; genuine server faults are logged and answered with a JSON 500.
`document_errors` documents each status a view answers with its schema and a real example body.
"""
import marshmallow as ma
import flask_smorest
from flask import current_app, request
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge

from accident_api.request_metrics import count_exception

NOT_LOADED = ("Model not loaded: no model card at models/model_card.json: run `accident-api "
              "train --synthetic --out models`")

EXAMPLES = {
    400: {"code": 400, "status": "Bad Request", "message": "Invalid JSON body.",
          "errors": {"json": ["Invalid JSON body."]}},
    404: {"code": 404, "status": "Not Found",
          "message": "prediction 019b0a3c-5f2e-7a41-9c1d-8e2f4b6a7c90: no such prediction in "
                     "the log"},
    409: {"code": 409, "status": "Conflict",
          "message": "prediction 019b0a3c-5f2e-7a41-9c1d-8e2f4b6a7c90: another label is "
                     "already recorded for it: severe"},
    413: {"code": 413, "status": "Request Entity Too Large",
          "message": "Too many records: 1001 > MAX_BATCH_SIZE=1000; send at most 1000 per "
                     "request."},
    415: {"code": 415, "status": "Unsupported Media Type",
          "message": "Content-Type must be application/json."},
    422: {"code": 422, "status": "Unprocessable Entity",
          "message": "The request was well-formed but was unable to be followed due to "
                     "semantic errors.",
          "errors": {"json": {"catu": ["Must be one of the codes 1, 2, 3."],
                              "extra": ["Unknown field."]}}},
    503: {"code": 503, "status": "Service Unavailable", "message": NOT_LOADED},
}

V2_EXAMPLES = {
    400: {"error": "feature 'vma' row 0: 300 is not between 1 and 130"},
    404: {"error": "model 'other' is not served here: this server serves "
                   "'accident-severity-rf' version '3f9a2b7c1d0e'"},
    413: {"error": "Too many rows: 1001 > MAX_BATCH_SIZE=1000"},
    503: {"error": NOT_LOADED},
}


class V2ErrorSchema(ma.Schema):
    """The protocol's error object."""

    error = ma.fields.String(metadata={"example": "model 'x' is not served here"})


def is_v2_path(path: str) -> bool:
    """True for the Open Inference Protocol paths, whose errors use the protocol's format."""
    return path == "/v2" or path.startswith("/v2/")


def document_errors(blp: flask_smorest.Blueprint, errors: dict, v2: bool = False):
    """Decorator: document each `status: description` of `errors` with schema and example."""
    # flask-smorest's own error schema (component "Error"), the one its error handler dumps
    rest = flask_smorest.Api.ERROR_SCHEMA
    schema, examples = (V2ErrorSchema, V2_EXAMPLES) if v2 else (rest, EXAMPLES)

    def decorate(view):
        for status, description in errors.items():
            view = blp.alt_response(status, schema=schema, description=description,
                                    example=examples[status], success=False)(view)
        return view
    return decorate


def _walk(messages, path=()):
    """Yield (path, message) from webargs' nested messages, e.g. (("records", "3", "vma"), ...).

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
        return "; ".join(f"{'.'.join(where) or 'body'}: {message}"
                         for where, message in _walk(data["messages"]))
    return _default_message(error)


def http_error_response(error: HTTPException):
    """The JSON body, status and headers for an HTTP error raised anywhere in the app."""
    data = getattr(error, "data", None) or {}
    headers = data.get("headers", {})
    if is_v2_path(request.path):
        return {"error": _v2_message(error)}, error.code, headers
    message = data.get("message")
    if message is None and "messages" in data and error.code != 422:
        message = " ".join(text for _, text in _walk(data["messages"]))  # "Invalid JSON body."
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
