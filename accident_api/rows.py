"""Accident records -> model rows, and a vectorised check of records in front of marshmallow.

marshmallow validates a record field by field (~50 µs per record, 50 ms for a 1,000-record
batch). `valid_rows` checks a whole request's records with a few numpy operations against
the same FeatureSpecs the schema is generated from, and accepts exactly what
`accident_api.schemas.AccidentRecordSchema` accepts (property-tested in
tests/test_rows.py). It never produces an error message: on any doubt it returns None and the
caller runs the marshmallow schema, so error bodies and rejection metrics come from one place.
"""
import math

import numpy as np

from model.feature_specs import FEATURE_SPECS, FEATURES

FEATURE_SET = frozenset(FEATURES)
# Exact types: JSON numbers decode to int or float; bool is an int subclass and is refused.
NUMBER_TYPES = frozenset({int, float})


# What the schema's fields return: int() for integer features, float() for the others.
_CASTS = tuple((spec.name, int if spec.dtype == "int" else float) for spec in FEATURE_SPECS)


def typed_record(record: dict) -> dict:
    """A record `valid_rows` accepted, typed as AccidentRecordSchema.load would return it."""
    return {name: cast(record[name]) for name, cast in _CASTS}


def records_to_rows(records) -> np.ndarray:
    """Validated records (dicts) -> float64 array (n, 28) in feature order, no pandas."""
    return np.array([[record[name] for name in FEATURES] for record in records], dtype="float64")


class _Domain:
    """The valid domain of every feature as arrays over the 28 columns.

    Each column has a closed interval [low, high]: the documented range of a numeric feature
    (open ends as infinities), or the smallest and largest code of a categorical one, whose
    codes are then looked up in one flat boolean table (`allowed`), column j's code c at
    `offset[j] + c - low[j]`.
    """

    def __init__(self, specs):
        self.low = np.array([min(s.codes) if s.codes is not None else
                             (-np.inf if s.minimum is None else s.minimum) for s in specs])
        self.high = np.array([max(s.codes) if s.codes is not None else
                              (np.inf if s.maximum is None else s.maximum) for s in specs])
        self.integral = np.array([s.dtype == "int" for s in specs])
        self.coded = np.array([s.codes is not None for s in specs])
        # an integer-valued column with codes has finite integer low/high: the table is exact
        sizes = [int(self.high[j] - self.low[j]) + 1 if self.coded[j] else 0
                 for j in range(len(specs))]
        self.offset = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype("int64")
        self.allowed = np.zeros(sum(sizes), dtype=bool)
        for j, spec in enumerate(specs):
            if spec.codes is not None:
                self.allowed[[self.offset[j] + int(c - self.low[j]) for c in spec.codes]] = True
        self.coded_columns = np.flatnonzero(self.coded)

    def contains(self, rows: np.ndarray) -> bool:
        """True when every value of `rows` (n, 28) is finite, in range, integral where the
        feature is an integer, and one of the codes where it is categorical."""
        if not np.isfinite(rows).all():
            return False
        if not ((rows >= self.low) & (rows <= self.high)).all():
            return False
        integral = rows[:, self.integral]
        if not (integral == np.floor(integral)).all():
            return False
        coded = rows[:, self.coded_columns]
        index = (coded - self.low[self.coded_columns]).astype("int64") \
            + self.offset[self.coded_columns]
        return bool(self.allowed[index].all())


# All codes are integers: a fractional code could never be looked up exactly.
assert all(float(c).is_integer() for s in FEATURE_SPECS if s.codes is not None for c in s.codes)
DOMAIN = _Domain(FEATURE_SPECS)


# One record (/predict) is checked in plain Python: numpy's per-call overhead on 28 values
# costs more than the checks themselves (13 µs against 4 µs).
_CHECKS = tuple((spec.name, spec.dtype == "int",
                 frozenset(spec.codes) if spec.codes is not None else None,
                 -math.inf if spec.minimum is None else spec.minimum,
                 math.inf if spec.maximum is None else spec.maximum) for spec in FEATURE_SPECS)


def _one_row(record) -> list | None:
    """The values of one record in feature order, or None (same rules as _Domain.contains)."""
    if type(record) is not dict or record.keys() != FEATURE_SET:
        return None
    row = []
    for name, integral, codes, low, high in _CHECKS:
        value = record[name]
        kind = type(value)
        if kind is float:
            if not math.isfinite(value) or (integral and not value.is_integer()):
                return None
        elif kind is not int:
            return None
        if codes is not None:
            if value not in codes:  # 2.0 == 2: an integral float matches its code
                return None
        elif not low <= value <= high:  # int/float comparison is exact, even for huge ints
            return None
        row.append(value)
    return row


def valid_rows(records) -> np.ndarray | None:
    """The (n, 28) float64 rows of `records` when AccidentRecordSchema would accept every one.

    None means "not certainly valid" (wrong container, missing or unknown key, a bool,
    string or null, a number that overflows a float, out of the domain, ...): the caller
    then validates with marshmallow, which names the field and reason.
    """
    if type(records) is not list or not records:
        return None
    if len(records) == 1:
        row = _one_row(records[0])
        if row is None:
            return None
        try:
            return np.array([row], dtype="float64")
        except OverflowError:  # only reachable for a feature without bounds
            return None
    for record in records:
        if type(record) is not dict or record.keys() != FEATURE_SET:
            return None
    values = [record[name] for record in records for name in FEATURES]
    if not set(map(type, values)) <= NUMBER_TYPES:
        return None
    try:
        rows = np.array(values, dtype="float64").reshape(len(records), len(FEATURES))
    except OverflowError:  # an integer beyond the float range: marshmallow says which
        return None
    return rows if DOMAIN.contains(rows) else None
