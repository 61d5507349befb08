"""A V2 inference request -> model rows: its structure, its tensors and their values checked.

Inputs are one tensor [N, 28] in feature order, or one [N] (or [N, 1]) tensor per feature named
after it, each as JSON `data` or as binary tensor data (`parameters.binary_data_size` bytes
after the JSON header, accident_api.blueprints.v2.binary). Every mistake is a 400 with the
protocol's error object naming it, counted in model_input_rejected_total
(`accident_api.validation.reject`); the rows a request declares are held to MAX_BATCH_SIZE
before any tensor is decoded, and the values go through the same domain check as /predict's.
"""
import math
from typing import NamedTuple

import numpy as np

from accident_api.blueprints.v2.binary import (HEADER_LENGTH, InferenceBody, byte_size,
                                               decode_tensor)
from accident_api.validation import MSG_EMPTY, N_FEATURES, first_violation, reject
from model.domain import NOT_A_CODE, NOT_FINITE, NOT_INTEGER
from model.feature_specs import FEATURES

V2_DATATYPES = ("FP64", "FP32", "INT64", "INT32")
OUTPUT_NAMES = ("predict", "probability", "prediction_id")
# The field label of a rejection stays bounded: a feature name or one of the request's keys
# (tensor names are the client's choice).
LABELLED_FIELDS = frozenset(FEATURES) | {"inputs", "outputs", "id", "parameters", "name",
                                         "shape", "datatype", "data", "binary_data_size"}
SIZE = "binary_data_size"


class RequestedOutput(NamedTuple):
    """An output the client wants, and whether as binary tensor data."""

    name: str
    binary: bool


class InferRequest(NamedTuple):
    """A checked inference request: the rows, the outputs wanted (in order) and its id."""

    rows: np.ndarray
    outputs: list
    id: str | None


class InputTensor(NamedTuple):
    """One input tensor whose structure is checked: JSON `data`, or the size of its bytes."""

    name: str
    shape: list
    datatype: str
    data: object
    binary_size: int | None
    binary: memoryview | None = None  # its bytes, once cut from the body


def _reject(field: str, reason: str, message: str, status: int = 400):
    reject(field if field in LABELLED_FIELDS else "inputs", reason, message, status)


def _need(container: dict, key: str, kind, where: str, required: bool = True):
    """`container[key]` if it is a `kind`; a 400 naming `where` when missing or mistyped."""
    if key not in container:
        if required:
            _reject(key, "missing", f"{where}: missing")
        return None
    value = container[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        _reject(key, "type", f"{where}: must be {_KIND_NAMES[kind]}")
    return value


_KIND_NAMES = {str: "a string", dict: "an object", list: "a list"}


def parse_request(body: InferenceBody, max_rows: int) -> InferRequest:
    """The rows, outputs and id of a decoded V2 inference request (`max_rows`: MAX_BATCH_SIZE)."""
    document = body.document
    if not isinstance(document, dict):
        _reject("inputs", "type", "the request must be a JSON object with `inputs`")
    request_id = _need(document, "id", str, "id", required=False)
    parameters = _need(document, "parameters", dict, "parameters", required=False) or {}
    all_binary = _flag(parameters, "binary_data_output", "parameters")
    inputs = _need(document, "inputs", list, "inputs")
    if not inputs:
        _reject("inputs", "empty", f"inputs: {MSG_EMPTY}")
    tensors = [_check_tensor(tensor, f"inputs[{index}]") for index, tensor in enumerate(inputs)]
    outputs = _wanted_outputs(document.get("outputs"), all_binary)
    declared = max((tensor.shape[0] for tensor in tensors if tensor.shape), default=0)
    if declared > max_rows:
        _reject("inputs", "too_many", f"Too many rows: {declared} > MAX_BATCH_SIZE={max_rows}",
                413)
    return InferRequest(_rows(_with_binary(tensors, body.binary)), outputs, request_id)


def _flag(parameters: dict, key: str, where: str, default: bool = False) -> bool:
    """The boolean parameter `key` (`default` when absent); a 400 when it is not a boolean."""
    value = parameters.get(key, default)
    if not isinstance(value, bool):
        _reject("parameters", "type", f"{where}.{key}: must be true or false, got {value!r}")
    return value


def _check_tensor(tensor, where: str) -> InputTensor:
    if not isinstance(tensor, dict):
        _reject("inputs", "type", f"{where}: must be an object")
    name = _need(tensor, "name", str, f"{where}.name")
    shape = _need(tensor, "shape", list, f"{where}.shape")
    if not all(type(size) is int for size in shape):
        _reject("shape", "type", f"{where}.shape: must be a list of integers, got {shape}")
    if any(size < 0 for size in shape):
        _reject("shape", "range", f"{where}.shape: sizes must be >= 0, got {shape}")
    datatype = _need(tensor, "datatype", str, f"{where}.datatype")
    if datatype not in V2_DATATYPES:
        _reject("datatype", "code", f"{where}.datatype: must be one of "
                                    f"{', '.join(V2_DATATYPES)}, got {datatype!r}")
    parameters = _need(tensor, "parameters", dict, f"{where}.parameters", required=False) or {}
    size = _binary_size(parameters, "data" in tensor, where)
    if size is None and "data" not in tensor:
        _reject("data", "missing", f"{where}.data: missing (or parameters.{SIZE}, for binary "
                                   f"tensor data after the JSON header)")
    if size is not None and size != byte_size(datatype, math.prod(shape)):
        _reject(SIZE, "size", f"{where}.parameters.{SIZE}: {size} bytes, but shape {shape} of "
                              f"{datatype} needs {byte_size(datatype, math.prod(shape))}")
    return InputTensor(name, shape, datatype, tensor.get("data"), size)


def _binary_size(parameters: dict, has_data: bool, where: str) -> int | None:
    """The tensor's `binary_data_size`, None for a JSON tensor; a 400 when it cannot be one."""
    if SIZE not in parameters:
        return None
    size = parameters[SIZE]
    if type(size) is not int or size < 0:
        _reject(SIZE, "type", f"{where}.parameters.{SIZE}: must be a byte count (an integer "
                              f">= 0), got {size!r}")
    if has_data:
        _reject(SIZE, "conflict", f"{where}: give either data or parameters.{SIZE}, not both")
    return size


def _with_binary(tensors: list, binary: memoryview | None) -> list:
    """The tensors, each binary one with its bytes cut from the body's binary part in order."""
    if binary is None:
        if any(tensor.binary_size is not None for tensor in tensors):
            _reject(SIZE, "no_header", f"inputs with parameters.{SIZE} need the "
                                       f"{HEADER_LENGTH} header (the JSON header's length)")
        return tensors
    if all(tensor.binary_size is None for tensor in tensors):
        _reject(SIZE, "missing", f"{HEADER_LENGTH} is given but no input has parameters.{SIZE}: "
                                 f"send the header only with binary tensor data")
    cut, offset = [], 0
    for tensor in tensors:
        size = tensor.binary_size
        if size is not None:
            if offset + size > len(binary):
                _reject(SIZE, "truncated", f"input '{tensor.name}': {size} bytes of binary "
                                           f"data, but only {len(binary) - offset} follow")
            tensor = tensor._replace(binary=binary[offset:offset + size])
            offset += size
        cut.append(tensor)
    if offset != len(binary):
        _reject(SIZE, "trailing", f"{len(binary) - offset} bytes after the last binary tensor "
                                  f"(the inputs' {SIZE} add up to {offset})")
    return cut


def _wanted_outputs(outputs, all_binary: bool) -> list:
    """The outputs asked for, in order, each binary or not; every output when none is named."""
    everything = [RequestedOutput(name, all_binary) for name in OUTPUT_NAMES]
    if outputs is None:
        return everything
    if not isinstance(outputs, list):
        _reject("outputs", "type", "outputs: must be a list")
    wanted = []
    for index, output in enumerate(outputs):
        where = f"outputs[{index}]"
        if not isinstance(output, dict):
            _reject("outputs", "type", f"{where}: must be an object")
        name = _need(output, "name", str, f"{where}.name")
        if name not in OUTPUT_NAMES:
            _reject("outputs", "code", f"{where}.name: must be one of "
                                       f"{', '.join(OUTPUT_NAMES)}, got {name!r}")
        parameters = _need(output, "parameters", dict, f"{where}.parameters",
                           required=False) or {}
        wanted.append(RequestedOutput(name, _flag(parameters, "binary_data",
                                                  f"{where}.parameters", all_binary)))
    names = [output.name for output in wanted]
    if len(set(names)) != len(names):
        _reject("outputs", "duplicate", f"each output may be requested once; got {names}")
    return wanted or everything


def _holds_booleans(data) -> bool:
    """True if JSON true/false sit anywhere in `data` (flat or nested lists)."""
    pending = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, bool):
            return True
    return False


def _tensor_values(tensor: InputTensor) -> np.ndarray:
    """The tensor's values as a flat float64 array of exactly prod(shape) numbers."""
    if tensor.binary is not None:  # its byte size matches shape and datatype (checked)
        return decode_tensor(tensor.datatype, tensor.binary).astype("float64")
    name, shape = tensor.name, tensor.shape
    try:
        raw = np.asarray(tensor.data)
    except ValueError:
        _reject(name, "shape", f"input '{name}': data is a ragged nested list")
    # numpy turns true/false into 1/0 when numbers sit beside them, so a mixed tensor would
    # otherwise pass as numbers; only a numeric array needs the scan
    if raw.dtype.kind not in "iuf" or _holds_booleans(tensor.data):
        _reject(name, "type", f"input '{name}': data must be numbers; it holds booleans, "
                              f"strings, nulls or integers too large for FP64")
    if raw.size != math.prod(shape):
        _reject(name, "shape", f"input '{name}': shape {shape} needs {math.prod(shape)} values, "
                               f"data has {raw.size}")
    if tensor.datatype.startswith("INT") and raw.dtype.kind == "f":
        _reject(name, "type", f"input '{name}': datatype {tensor.datatype} needs integers")
    return raw.astype("float64").ravel()


def _rows_from_matrix(tensor: InputTensor) -> np.ndarray:
    shape = tensor.shape
    if len(shape) != 2 or shape[1] != N_FEATURES:
        _reject(tensor.name, "shape",
                f"input '{tensor.name}': shape must be [N, {N_FEATURES}] "
                f"(features in order {', '.join(FEATURES)}), got {shape}")
    return _tensor_values(tensor).reshape(shape[0], N_FEATURES)


def _rows_from_columns(tensors: list) -> np.ndarray:
    names = [tensor.name for tensor in tensors]
    by_name = {tensor.name: tensor for tensor in tensors}
    unknown = sorted(set(by_name) - set(FEATURES))
    missing = [name for name in FEATURES if name not in by_name]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if unknown or missing or duplicates:
        problems = [f"{what} {listed}" for what, listed in
                    (("missing", missing), ("unknown", unknown), ("duplicated", duplicates))
                    if listed]
        reason = "unknown_field" if unknown else "missing" if missing else "duplicate"
        _reject("inputs", reason,
                f"send one tensor of shape [N, {N_FEATURES}] or exactly one tensor per "
                f"feature; {', '.join(problems)}")
    columns = []
    for name in FEATURES:
        shape = by_name[name].shape
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            _reject(name, "shape", f"input '{name}': shape must be [N] or [N, 1], got {shape}")
        columns.append(_tensor_values(by_name[name]))
    if len({column.size for column in columns}) != 1:
        _reject("inputs", "shape", "all feature tensors must have the same number of rows")
    return np.column_stack(columns)


_DOMAIN_REASONS = {NOT_FINITE: ("not_finite", "is not a finite number"),
                   NOT_INTEGER: ("type", "is not an integer")}


def _rows(tensors: list) -> np.ndarray:
    """Validated (n, 28) float64 rows from the request's input tensors."""
    if len(tensors) == 1 and tensors[0].name not in FEATURES:
        rows = _rows_from_matrix(tensors[0])
    else:
        rows = _rows_from_columns(tensors)
    if rows.shape[0] == 0:
        _reject("inputs", "empty", "the input tensors hold no rows")
    found = first_violation(rows)
    if found is not None:
        spec, row, value, kind = found
        if kind in _DOMAIN_REASONS:
            reason, why = _DOMAIN_REASONS[kind]
        elif kind == NOT_A_CODE:
            reason, why = "code", f"is not one of the codes {list(spec.codes)}"
        else:
            reason, why = "range", f"is not between {spec.minimum} and {spec.maximum}"
        _reject(spec.name, reason, f"feature '{spec.name}' row {row}: {value:g} {why}")
    return rows
