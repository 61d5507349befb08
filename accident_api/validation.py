"""Prediction inputs -> model rows: the one validation of records, with the reason of every refusal.

A request's records are checked together: exact keys, JSON numbers (not booleans or strings),
then every value against `model.domain.DOMAIN`, the domain training uses too. An explicit
unknown is accepted for every feature: `null`, or the feature's `unknown_code` (BAAC's -1 for
"not given" where -1 is not one of its values: `vma`, `atm`); it becomes NaN in the rows, which
the served model imputes with its card's training fill values (`model.impute.Imputer.fill`).
A missing key is still refused, so a typo never passes for an unknown. The rows are built once
and are what the model receives. Only a request that fails is looked at record by record,
field by field, to name each bad field and why; each (field, reason) is counted in
model_input_rejected_total, and the 422 body is flask-smorest's (`ma.ValidationError`). V2
tensors (accident_api.blueprints.v2.tensors) use the same domain check and `reject`, and accept
no unknowns.
"""
import numpy as np
from flask_smorest import abort
from marshmallow import ValidationError

from model.domain import DOMAIN, NOT_A_CODE, NOT_FINITE, NOT_INTEGER, OUT_OF_RANGE, VALID
from model.feature_specs import FEATURE_SPECS, FEATURES
from monitoring import metrics

N_FEATURES = len(FEATURES)
FEATURE_SET = frozenset(FEATURES)
# Exact types: JSON numbers decode to int or float; bool is an int subclass and is refused.
NUMBER_TYPES = frozenset({int, float})
NUMBER_OR_NULL_TYPES = NUMBER_TYPES | {type(None)}
# Per column, the code that means "unknown" (NaN where there is none: NaN equals nothing), and
# a valid value standing in for an unknown while the rest of its row is checked.
UNKNOWN_CODES = np.array([np.nan if s.unknown_code is None else s.unknown_code
                          for s in FEATURE_SPECS], dtype="float64")
UNKNOWN_COLUMNS = np.flatnonzero(~np.isnan(UNKNOWN_CODES))
STAND_IN = np.array([s.example for s in FEATURE_SPECS], dtype="float64")

MSG_MISSING = "Missing data for required field."
MSG_NULL = "Field may not be null."
MSG_INTEGER = "Not a valid integer: send a JSON number without a fractional part."
MSG_NUMBER = "Not a valid number: send a JSON number."
MSG_NOT_FINITE = "Special numeric values (nan or infinity) are not permitted."
MSG_TOO_LARGE = "Number too large: it does not fit in a float."
MSG_RANGE = "Must be between {min} and {max}."
MSG_CODE = "Must be one of the codes {choices}."
MSG_UNKNOWN = "Unknown field."
MSG_NOT_AN_OBJECT = "Invalid input type."
MSG_NOT_A_LIST = "Not a valid list."
MSG_EMPTY = "Send at least one record (or tensor)."


def reject(field: str, reason: str, message: str, status: int = 400):
    """Count one refusal of `field` for `reason` and abort with `message` (V2's error object)."""
    metrics.record_rejection(field, reason)
    abort(status, message=message)


def refuse(messages: dict, reasons: set):
    """Count each (field, reason) once and raise the validation error webargs answers with 422."""
    for field, reason in reasons:
        metrics.record_rejection(field, reason)
    raise ValidationError(messages)


def rows_if_valid(records) -> np.ndarray | None:
    """The (n, 28) float64 rows of `records` if every record is valid, else None; NaN where a
    value was sent as unknown."""
    if type(records) is not list or not records:
        return None
    for record in records:
        if type(record) is not dict or record.keys() != FEATURE_SET:
            return None
    values = [record[name] for record in records for name in FEATURES]
    null = None
    types = set(map(type, values))
    if not types <= NUMBER_TYPES:
        if not types <= NUMBER_OR_NULL_TYPES:
            return None
        null = np.array([value is None for value in values]).reshape(len(records), N_FEATURES)
    try:  # None becomes NaN
        rows = np.array(values, dtype="float64").reshape(len(records), N_FEATURES)
    except OverflowError:  # an integer beyond the float range
        return None
    unknown = _unknowns(rows, null)
    if unknown is None:
        return rows if DOMAIN.contains(rows) else None
    if not DOMAIN.contains(np.where(unknown, STAND_IN, rows)):
        return None
    rows[unknown] = np.nan
    return rows


def _unknowns(rows: np.ndarray, null: np.ndarray | None) -> np.ndarray | None:
    """The mask of the values of `rows` sent as unknown (`null`, or an unknown code), or None
    when there is none (the common case)."""
    coded = rows[:, UNKNOWN_COLUMNS] == UNKNOWN_CODES[UNKNOWN_COLUMNS]
    if null is None and not coded.any():
        return None
    unknown = np.zeros(rows.shape, dtype=bool) if null is None else null
    unknown[:, UNKNOWN_COLUMNS] |= coded
    return unknown


def record_rows(record) -> np.ndarray:
    """The (1, 28) row of one record (POST /predict); refused naming each bad field."""
    rows = rows_if_valid([record])
    if rows is None:
        messages, reasons = problems(record)
        refuse(messages, reasons)
    return rows


def batch_rows(body, max_records: int) -> np.ndarray:
    """The (n, 28) rows of `{"records": [...]}` (POST /predict/batch), in order.

    More than `max_records` records is a 413 before any record is looked at.
    """
    records = body.get("records") if type(body) is dict else None
    if type(records) is list and len(records) > max_records:
        abort(413, message=f"Too many records: {len(records)} > MAX_BATCH_SIZE={max_records}; "
                           f"send at most {max_records} per request.")
    if type(body) is dict and body.keys() == {"records"}:
        rows = rows_if_valid(records)
        if rows is not None:
            return rows
    refuse(*_batch_problems(body))


def _batch_problems(body) -> tuple[dict, set]:
    if type(body) is not dict:
        return {"_schema": [MSG_NOT_AN_OBJECT]}, {("_schema", "type")}
    messages = {key: [MSG_UNKNOWN] for key in body if key != "records"}
    reasons = {("_unknown", "unknown_field")} if messages else set()
    records = body.get("records", _MISSING)
    envelope = {_MISSING: (MSG_MISSING, "missing"), None: (MSG_NULL, "null")}
    if records is _MISSING or records is None:
        message, reason = envelope[records]
    elif type(records) is not list:
        message, reason = MSG_NOT_A_LIST, "type"
    elif not records:
        message, reason = MSG_EMPTY, "empty"
    else:
        by_index = {}
        for index, record in enumerate(records):
            record_messages, record_reasons = problems(record)
            if record_messages:
                by_index[str(index)] = record_messages
                reasons |= record_reasons
        if by_index:
            messages["records"] = by_index
        return messages, reasons
    messages["records"] = [message]
    return messages, reasons | {("records", reason)}


_MISSING = object()


def problems(record) -> tuple[dict, set]:
    """({field: [message]}, {(field, reason)}) of one record; both empty when it is valid."""
    if type(record) is not dict:
        return {"_schema": [MSG_NOT_AN_OBJECT]}, {("_schema", "type")}
    messages = {key: [MSG_UNKNOWN] for key in record if key not in FEATURE_SET}
    reasons = {("_unknown", "unknown_field")} if messages else set()
    values = STAND_IN[None, :].copy()  # an unknown (null) keeps its valid stand-in
    numeric = np.zeros(N_FEATURES, dtype=bool)
    for column, spec in enumerate(FEATURE_SPECS):
        value = record.get(spec.name, _MISSING)
        if value is _MISSING:
            found = (MSG_MISSING, "missing")
        elif value is None:
            continue
        elif type(value) not in NUMBER_TYPES:
            found = (MSG_INTEGER if spec.dtype == "int" else MSG_NUMBER, "type")
        else:
            try:
                values[0, column] = value
                numeric[column] = True
                continue
            except OverflowError:
                found = (MSG_TOO_LARGE, "range")
        messages[spec.name] = [found[0]]
        reasons.add((spec.name, found[1]))
    kinds = DOMAIN.violations(values)[0]
    refused = numeric & (kinds != VALID) & (values[0] != UNKNOWN_CODES)  # NaN != code: True
    for column in np.flatnonzero(refused).tolist():
        spec = FEATURE_SPECS[column]
        message, reason = _domain_message(spec, int(kinds[column]))
        messages[spec.name] = [message]
        reasons.add((spec.name, reason))
    return messages, reasons


def _domain_message(spec, kind: int) -> tuple[str, str]:
    """The REST message and reason of a value that `DOMAIN.violations` found of `kind`."""
    if kind == NOT_FINITE:
        return MSG_NOT_FINITE, "not_finite"
    if kind == NOT_INTEGER:
        return MSG_INTEGER, "type"
    if kind == NOT_A_CODE:
        return MSG_CODE.format(choices=", ".join(str(c) for c in spec.codes)), "code"
    assert kind == OUT_OF_RANGE, kind
    return MSG_RANGE.format(min=spec.minimum, max=spec.maximum), "range"


def first_violation(rows: np.ndarray):
    """(feature spec, row index, value, kind) of the first invalid value, feature by feature,
    or None when every value of `rows` is valid."""
    if DOMAIN.contains(rows):
        return None
    kinds = DOMAIN.violations(rows)
    for column, spec in enumerate(FEATURE_SPECS):
        bad = np.flatnonzero(kinds[:, column] != VALID)
        if bad.size:
            row = int(bad[0])
            return spec, row, float(rows[row, column]), int(kinds[row, column])
    raise AssertionError("DOMAIN.contains and DOMAIN.violations disagree")
