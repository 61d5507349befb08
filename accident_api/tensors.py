"""V2 input tensors -> numpy rows in feature order, checked against FEATURE_SPECS (vectorised)."""
import math

import numpy as np
from flask import current_app
from flask_smorest import abort

from accident_api.rows import DOMAIN
from model.feature_specs import FEATURE_SPECS, FEATURES
from monitoring import metrics

N_FEATURES = len(FEATURES)
LABELLED_FIELDS = frozenset(FEATURES) | {"outputs"}
CODES = {spec.name: np.asarray(spec.codes, dtype="float64") for spec in FEATURE_SPECS
         if spec.codes is not None}


def reject(field: str, reason: str, message: str, status: int = 400):
    """Count the rejection and abort; the /v2 error handler turns it into {"error": message}."""
    # the field label stays bounded: a feature name, "outputs" or "inputs" (tensor names are
    # the client's choice)
    metrics.record_rejection(field if field in LABELLED_FIELDS else "inputs", reason)
    abort(status, message=message)


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


def _tensor_values(tensor: dict) -> np.ndarray:
    """The tensor's data as a flat float64 array of exactly prod(shape) numbers."""
    name, shape = tensor["name"], tensor["shape"]
    try:
        raw = np.asarray(tensor["data"])
    except ValueError:
        reject(name, "shape", f"input '{name}': data is a ragged nested list")
    # numpy turns true/false into 1/0 when numbers sit beside them, so a mixed tensor would
    # otherwise pass as numbers; only a numeric array needs the scan
    if raw.dtype.kind not in "iuf" or _holds_booleans(tensor["data"]):
        # numpy falls back to bool/str/object arrays for anything but plain numbers; name the
        # JSON causes rather than numpy's dtype codes
        reject(name, "type", f"input '{name}': data must be numbers; it holds booleans, "
                             f"strings, nulls or integers too large for FP64")
    if raw.size != math.prod(shape):
        reject(name, "shape", f"input '{name}': shape {shape} needs {math.prod(shape)} values, "
                              f"data has {raw.size}")
    values = raw.astype("float64").ravel()
    if tensor["datatype"].startswith("INT") and raw.dtype.kind == "f":
        reject(name, "type", f"input '{name}': datatype {tensor['datatype']} needs integers")
    return values


def _rows_from_matrix(tensor: dict) -> np.ndarray:
    shape = tensor["shape"]
    if len(shape) != 2 or shape[1] != N_FEATURES:
        reject(tensor["name"], "shape",
               f"input '{tensor['name']}': shape must be [N, {N_FEATURES}] "
               f"(features in order {', '.join(FEATURES)}), got {shape}")
    return _tensor_values(tensor).reshape(shape[0], N_FEATURES)


def _rows_from_columns(tensors: list) -> np.ndarray:
    names = [tensor["name"] for tensor in tensors]
    by_name = {tensor["name"]: tensor for tensor in tensors}
    unknown = sorted(set(by_name) - set(FEATURES))
    missing = [name for name in FEATURES if name not in by_name]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if unknown or missing or duplicates:
        problems = [f"{what} {listed}" for what, listed in
                    (("missing", missing), ("unknown", unknown), ("duplicated", duplicates))
                    if listed]
        reason = "unknown_field" if unknown else "missing" if missing else "duplicate"
        reject("inputs", reason,
               f"send one tensor of shape [N, {N_FEATURES}] or exactly one tensor per feature; "
               f"{', '.join(problems)}")
    columns = []
    for name in FEATURES:
        shape = by_name[name]["shape"]
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            reject(name, "shape", f"input '{name}': shape must be [N] or [N, 1], got {shape}")
        columns.append(_tensor_values(by_name[name]))
    if len({column.size for column in columns}) != 1:
        reject("inputs", "shape", "all feature tensors must have the same number of rows")
    return np.column_stack(columns)


def check_domain(rows: np.ndarray) -> None:
    """Reject the request when any value is outside its feature's domain (first offender named)."""
    if DOMAIN.contains(rows):  # the common case in one vectorised check, shared with /predict
        return
    for column, spec in enumerate(FEATURE_SPECS):
        values = rows[:, column]
        finite = np.isfinite(values)
        if not finite.all():
            bad, reason, why = ~finite, "not_finite", "is not a finite number"
        elif spec.dtype == "int" and not (values == np.floor(values)).all():
            bad, reason, why = values != np.floor(values), "type", "is not an integer"
        elif spec.codes is not None:
            bad = ~np.isin(values, CODES[spec.name])
            reason, why = "code", f"is not one of the codes {list(spec.codes)}"
        else:
            bad = (values < spec.minimum) | (values > spec.maximum)
            reason, why = "range", f"is not between {spec.minimum} and {spec.maximum}"
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            reject(spec.name, reason, f"feature '{spec.name}' row {row}: {values[row]:g} {why}")


def inputs_to_rows(tensors: list) -> np.ndarray:
    """Validated (n, 28) float64 rows from the request's input tensors."""
    if len(tensors) == 1 and tensors[0]["name"] not in FEATURES:
        rows = _rows_from_matrix(tensors[0])
    else:
        rows = _rows_from_columns(tensors)
    cap = current_app.config["MAX_BATCH_SIZE"]
    if rows.shape[0] == 0:
        reject("inputs", "empty", "the input tensors hold no rows")
    if rows.shape[0] > cap:
        reject("inputs", "too_many", f"Too many rows: {rows.shape[0]} > MAX_BATCH_SIZE={cap}", 413)
    check_domain(rows)
    return rows
