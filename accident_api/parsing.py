"""The request-body parser shared by the prediction and V2 blueprints.

webargs' `load_json` only turns `JSONDecodeError` into "Invalid JSON body.", but `json.loads`
raises two more errors on input a client controls: `RecursionError` for deeply nested
documents (`[[[[…`) and a plain `ValueError` for integer literals over Python's 4300-digit
conversion limit. Both are malformed bodies from the client's side, so both become the same 400.
"""
import json

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

    def _raw_load_json(self, req):
        # Checked here, where the body is read, rather than in a before_request hook: one
        # hook less on every request of the blueprint.
        if not (self.any_content_type or is_json_request(req)):
            abort(415, message=JSON_REQUIRED)
        try:
            return core.parse_json(req.get_data(cache=True))
        except json.JSONDecodeError:
            raise  # webargs' load_json handles it (an empty body is "missing", not an error)
        except (RecursionError, ValueError) as exc:
            # same answer as webargs' own invalid-JSON path (flaskparser: 400 "Invalid JSON body.")
            self._handle_invalid_json_error(exc, req)
