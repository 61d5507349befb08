"""OpenAPI documentation of error responses: every status with its schema and an example body.

Two formats, as accident_api.errors produces them: flask-smorest's `{code, status, message,
errors}` (its own `ErrorSchema`, component "Error") and, under /v2, the Open Inference
Protocol's `{"error": "..."}` (V2ErrorSchema). The examples are real bodies this server sends.
"""
from flask_smorest import Blueprint
from flask_smorest.error_handler import ErrorSchema

from accident_api.schemas import V2ErrorSchema

NOT_LOADED = ("Model not loaded: no model card at models/model_card.json: run `accident-api "
              "train --synthetic --out models`")

EXAMPLES = {
    400: {"code": 400, "status": "Bad Request", "message": "Invalid JSON body.",
          "errors": {"json": ["Invalid JSON body."]}},
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


def document_errors(blp: Blueprint, errors: dict, v2: bool = False):
    """Decorator: document each `status: description` of `errors` with schema and example."""
    schema, examples = (V2ErrorSchema, V2_EXAMPLES) if v2 else (ErrorSchema, EXAMPLES)

    def decorate(view):
        documented = view
        for status, description in errors.items():
            documented = blp.alt_response(status, schema=schema, description=description,
                                          example=examples[status], success=False)(documented)
        # alt_response's wrappers only carry documentation, yet each one costs a call and an
        # ensure_sync check on every request: keep their documentation, drop the wrappers
        # (the decorators above this one copy it through functools.wraps).
        view._apidoc = documented._apidoc
        return view
    return decorate
