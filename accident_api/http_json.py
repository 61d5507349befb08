"""JSON at the HTTP boundary: the app's JSON provider (orjson) and the request-body parser.

`OrjsonProvider` keeps Flask's output (keys sorted, compact out of debug mode, dates as HTTP
dates through Flask's own `default`) and reads what the standard library reads: a document
orjson refuses (bare `NaN`, a number beyond a double, a lone surrogate, over 1,024 levels of
nesting) is decoded again by `json.loads`, so a huge number still reaches validation and is
refused naming its field. Integers beyond 64 bits come back as floats; a NaN or infinite float
is written `null`.

`JsonBodyParser` (webargs) turns a body that is not JSON into webargs' 400 "Invalid JSON body.",
also when decoding raises more than `JSONDecodeError`: `RecursionError` for deeply nested
documents and `ValueError` for integer literals over Python's 4300-digit conversion limit.
"""
import json

import orjson
from flask import current_app
from flask.json.provider import DefaultJSONProvider
from flask_smorest import abort
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

# Datetimes go to Flask's `default` (HTTP date), not orjson's RFC 3339, so answers do not change.
DUMP_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
COMPACT = {"separators": (",", ":")}  # what DefaultJSONProvider.response passes out of debug
JSON_REQUIRED = "Content-Type must be application/json."
INVALID_JSON = {"json": ["Invalid JSON body."]}


class OrjsonProvider(DefaultJSONProvider):
    """DefaultJSONProvider whose compact encoding and whose decoding run in orjson."""

    def dumps(self, obj, **kwargs) -> str:
        """Serialise `obj` to a JSON string; indented or other stdlib options: the stdlib."""
        if not kwargs or kwargs == COMPACT:
            try:
                return orjson.dumps(obj, default=self.default, option=DUMP_OPTIONS).decode()
            except orjson.JSONEncodeError:
                pass  # e.g. an int beyond 64 bits: the standard library writes it, or says why
        return super().dumps(obj, **kwargs)

    def loads(self, s, **kwargs):
        """Deserialise a JSON document from text or UTF-8 bytes, as `json.loads` would."""
        if not kwargs:
            try:
                return orjson.loads(s)
            except orjson.JSONDecodeError:
                pass  # rare (invalid or unusual documents): the standard library decides
        return json.loads(s, **kwargs)


class JsonBodyParser(FlaskParser):
    """FlaskParser whose JSON loading never lets a client's document raise past it.

    A body whose Content-Type is not JSON is a 415 (not a validation error about missing
    fields). `any_content_type=True` parses the body whatever its Content-Type: V2 clients
    (tritonclient among them) post JSON without one.
    """

    def __init__(self, *args, any_content_type: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.any_content_type = any_content_type

    def load_json(self, req, schema):
        """The decoded body, `missing` when there is none; 415 or 400 when it cannot be JSON."""
        if not (self.any_content_type or is_json_request(req)):
            abort(415, message=JSON_REQUIRED)
        body = req.get_data(cache=True)
        if not body:
            return core.missing
        return self.decode(body)

    def decode(self, document: bytes):
        """The JSON `document` decoded; webargs' 400 "Invalid JSON body." when it is not JSON."""
        try:
            return current_app.json.loads(document)
        except (json.JSONDecodeError, RecursionError, ValueError):
            abort(400, messages=INVALID_JSON)
