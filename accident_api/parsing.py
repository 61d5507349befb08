"""The request-body parser shared by the prediction and V2 blueprints.

The body is decoded by the app's JSON provider (accident_api.json_provider: orjson, the
standard library's reading). A body that is not JSON becomes webargs' own answer, 400 "Invalid
JSON body.", also when decoding raises more than `JSONDecodeError`: `RecursionError` for
deeply nested documents (`[[[[…`) and `ValueError` for integer literals over Python's
4300-digit conversion limit. An empty body is "missing", as in webargs, so a required schema
names the missing fields.
"""
import json

from flask import current_app
from flask_smorest import abort
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

JSON_REQUIRED = "Content-Type must be application/json."


class JsonBodyParser(FlaskParser):
    """FlaskParser whose JSON loading never lets a client's document raise past it.

    By default a body whose Content-Type is not JSON is a 415 (not a validation error about
    missing fields). `any_content_type=True` parses the body whatever its Content-Type: V2
    clients (tritonclient among them) post JSON without one.
    """

    def __init__(self, *args, any_content_type: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.any_content_type = any_content_type

    def load_json(self, req, schema):
        """The decoded body, `missing` when there is none; 415 or 400 when it cannot be JSON."""
        # The 415 is checked here, where the body is read, rather than in a before_request
        # hook: one hook less on every request of the blueprint.
        if not (self.any_content_type or is_json_request(req)):
            abort(415, message=JSON_REQUIRED)
        body = req.get_data(cache=True)
        if not body:
            return core.missing
        try:
            return current_app.json.loads(body)
        except (json.JSONDecodeError, RecursionError, ValueError) as exc:
            # RecursionError for deeply nested documents and ValueError for integer literals
            # over Python's 4300-digit conversion limit are malformed bodies too
            self._handle_invalid_json_error(exc, req)
