"""The binary tensor data extension of the Open Inference Protocol: the wire format.

A binary request's body is a JSON header of `Inference-Header-Content-Length` bytes followed
by the tensors' raw bytes, little-endian, row-major, in the order of the inputs that declare
`parameters.binary_data_size`. `InferenceBodyParser` is the one place that splits the body;
a response with binary outputs is built by `binary_response` the same way round. BYTES
elements travel as a 4-byte little-endian length followed by the bytes.
"""
import struct
from typing import NamedTuple

import numpy as np
from flask import Response, current_app
from flask_smorest import abort
from webargs import core

from accident_api.http_json import JsonBodyParser

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_CONTENT_TYPE = "application/octet-stream"
# Fixed-size datatypes as numpy dtypes (little-endian whatever the machine); BYTES is variable.
DTYPES = {"BOOL": np.dtype("?"), "UINT8": np.dtype("u1"), "UINT16": np.dtype("<u2"),
          "UINT32": np.dtype("<u4"), "UINT64": np.dtype("<u8"), "INT8": np.dtype("i1"),
          "INT16": np.dtype("<i2"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8"),
          "FP16": np.dtype("<f2"), "FP32": np.dtype("<f4"), "FP64": np.dtype("<f8")}
BYTES_LENGTH = struct.Struct("<I")
MAX_HEADER_DIGITS = 19  # any byte count a body can have, and no int() of a huge digit string

_RAW = {"schema": {"type": "string", "format": "binary"}}
# The extension in the OpenAPI document, beside the JSON request and response (flask-smorest's
# `Blueprint.doc` merges it into the operation).
OPENAPI = {
    "parameters": [{
        "in": "header", "name": HEADER_LENGTH, "required": False,
        "schema": {"type": "integer", "minimum": 1},
        "description": "Binary tensor data: the length in bytes of the JSON header that starts "
                       "the body; the inputs with `parameters.binary_data_size` follow it, "
                       "in order, as raw little-endian bytes."}],
    "requestBody": {
        "description": f"JSON, or (binary tensor data extension, with {HEADER_LENGTH}) the "
                       f"JSON header followed by the binary inputs' bytes.",
        "content": {BINARY_CONTENT_TYPE: _RAW}},
    "responses": {200: {
        "description": f"The outputs. When an output is asked for as binary data "
                       f"(`binary_data`, `binary_data_output`): {BINARY_CONTENT_TYPE}, the "
                       f"JSON header of {HEADER_LENGTH} bytes, then the binary outputs' bytes.",
        "content": {BINARY_CONTENT_TYPE: _RAW},
        "headers": {HEADER_LENGTH: {
            "description": "Length of the JSON header (binary responses only).",
            "schema": {"type": "integer"}}}}},
}


class InferenceBody(NamedTuple):
    """A decoded inference body: the JSON document, and the bytes after it (None: no header)."""

    document: object
    binary: memoryview | None


class InferenceBodyParser(JsonBodyParser):
    """JsonBodyParser (any Content-Type) whose body may carry binary tensor data after the JSON.

    A bad length header is a 400 before anything is decoded, like a body that is not JSON.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, any_content_type=True, **kwargs)

    def load_json(self, req, schema):
        """The body as an `InferenceBody`; an empty body is an empty document."""
        declared = req.headers.get(HEADER_LENGTH)
        if declared is None:
            document = super().load_json(req, schema)
            return InferenceBody({} if document is core.missing else document, None)
        body = req.get_data(cache=True)
        length = header_length(declared, len(body))
        return InferenceBody(self.decode(body[:length]), memoryview(body)[length:])


def header_length(declared: str, body_size: int) -> int:
    """The JSON header's length from the `Inference-Header-Content-Length` value, or a 400."""
    declared = declared.strip()
    if not (declared.isascii() and declared.isdigit() and len(declared) <= MAX_HEADER_DIGITS):
        abort(400, message=f"{HEADER_LENGTH}: must be the JSON header's length in bytes "
                           f"(a non-negative integer), got {declared[:40]!r}")
    length = int(declared)
    if not 0 < length <= body_size:
        abort(400, message=f"{HEADER_LENGTH}: {length} bytes of JSON header, but the body "
                           f"has {body_size} bytes; it must be between 1 and the body's length")
    return length


def decode_tensor(datatype: str, buffer) -> np.ndarray:
    """The flat array of a fixed-size `datatype` whose bytes are `buffer` (sizes checked)."""
    return np.frombuffer(buffer, dtype=DTYPES[datatype])


def byte_size(datatype: str, count: int) -> int:
    """Bytes of `count` elements of a fixed-size `datatype`."""
    return count * DTYPES[datatype].itemsize


def encode_bytes(elements) -> bytes:
    """BYTES elements (bytes, or str as UTF-8) as length-prefixed binary data."""
    parts = []
    for element in elements:
        raw = element.encode() if isinstance(element, str) else bytes(element)
        parts += (BYTES_LENGTH.pack(len(raw)), raw)
    return b"".join(parts)


def encode_tensor(datatype: str, values: np.ndarray) -> bytes:
    """The binary data of a tensor of `datatype`, row-major."""
    if datatype == "BYTES":
        return encode_bytes(np.asarray(values, dtype=object).ravel())
    return np.ascontiguousarray(values, dtype=DTYPES[datatype]).tobytes()


def json_data(datatype: str, values: np.ndarray) -> list:
    """The flat JSON `data` of a tensor of `datatype` (BYTES as text)."""
    flat = np.asarray(values, dtype=object if datatype == "BYTES" else None).ravel()
    if datatype == "BYTES":
        return [v.decode() if isinstance(v, bytes) else str(v) for v in flat]
    return flat.tolist()


def output_tensor(name: str, datatype: str, values: np.ndarray, binary: bool):
    """(the response's output object, its binary data or None) of one output tensor."""
    tensor = {"name": name, "datatype": datatype, "shape": list(np.shape(values))}
    if not binary:
        tensor["data"] = json_data(datatype, values)
        return tensor, None
    raw = encode_tensor(datatype, values)
    tensor["parameters"] = {"binary_data_size": len(raw)}
    return tensor, raw


def binary_response(header: dict, chunks: list) -> Response:
    """A 200 whose body is the JSON `header` followed by the outputs' binary `chunks`."""
    encoded = current_app.json.dumps(header).encode()
    return Response(b"".join([encoded, *chunks]), status=200, mimetype=BINARY_CONTENT_TYPE,
                    headers={HEADER_LENGTH: str(len(encoded))})
