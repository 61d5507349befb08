"""The valid domain of the 28 features, checked on whole arrays: one check for training and serving.

Training turns every value outside its feature's domain into missing (`model.features`); the
API refuses such a value, naming the feature and why (`accident_api.validation`, the V2 tensors).
Both ask `DOMAIN`, built from `model.feature_specs.FEATURE_SPECS`, so they can never disagree.
"""
import numpy as np

from model.feature_specs import FEATURE_SPECS

# What is wrong with one value (the array `violations` returns holds these codes).
VALID, NOT_FINITE, NOT_INTEGER, OUT_OF_RANGE, NOT_A_CODE = range(5)


class Domain:
    """The valid domain of every feature as arrays over the columns.

    Each column has a closed interval [low, high]: the documented range of a numeric feature
    (open ends as infinities), or the smallest and largest code of a categorical one, whose
    codes are then looked up in one flat boolean table (`allowed`), column j's code c at
    `offset[j] + c - low[j]`.
    """

    def __init__(self, specs):
        self.specs = tuple(specs)
        self.low = np.array([min(s.codes) if s.codes is not None else
                             (-np.inf if s.minimum is None else s.minimum) for s in specs],
                            dtype="float64")
        self.high = np.array([max(s.codes) if s.codes is not None else
                              (np.inf if s.maximum is None else s.maximum) for s in specs],
                             dtype="float64")
        self.integral = np.array([s.dtype == "int" for s in specs])
        self.coded = np.array([s.codes is not None for s in specs])
        sizes = [int(self.high[j] - self.low[j]) + 1 if self.coded[j] else 0
                 for j in range(len(self.specs))]
        self.offset = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype("int64")
        self.allowed = np.zeros(sum(sizes), dtype=bool)
        for j, spec in enumerate(self.specs):
            if spec.codes is not None:
                self.allowed[[self.offset[j] + int(c - self.low[j]) for c in spec.codes]] = True
        self.coded_columns = np.flatnonzero(self.coded)

    def contains(self, rows: np.ndarray) -> bool:
        """True when every value of `rows` (n, n_features) is valid (the common, fast case)."""
        if not np.isfinite(rows).all():
            return False
        if not ((rows >= self.low) & (rows <= self.high)).all():
            return False
        integral = rows[:, self.integral]
        if not (integral == np.floor(integral)).all():
            return False
        return bool(self._is_a_code(rows[:, self.coded_columns]).all())

    def violations(self, rows: np.ndarray) -> np.ndarray:
        """What is wrong with each value of `rows` (n, n_features): an int8 array of
        VALID, NOT_FINITE, NOT_INTEGER, OUT_OF_RANGE or NOT_A_CODE (NaN is NOT_FINITE)."""
        kinds = np.full(rows.shape, VALID, dtype="int8")
        finite = np.isfinite(rows)
        kinds[~finite] = NOT_FINITE
        safe = np.where(finite, rows, self.low)  # checked values only, never NaN or inf
        fractional = finite & self.integral & (safe != np.floor(safe))
        kinds[fractional] = NOT_INTEGER
        outside = finite & ~fractional & ((safe < self.low) | (safe > self.high))
        # a categorical value outside its codes' span is "not a code", as the API words it
        kinds[outside] = np.where(self.coded, NOT_A_CODE, OUT_OF_RANGE)[np.nonzero(outside)[1]]
        coded = self.coded_columns
        candidates = kinds[:, coded] == VALID
        not_a_code = candidates & ~self._is_a_code(np.where(candidates, safe[:, coded],
                                                            self.low[coded]))
        kinds[:, coded] = np.where(not_a_code, NOT_A_CODE, kinds[:, coded])
        return kinds

    def _is_a_code(self, coded: np.ndarray) -> np.ndarray:
        """Booleans: each value of the coded columns (integral, within span) is one of its codes."""
        index = (coded - self.low[self.coded_columns]).astype("int64") \
            + self.offset[self.coded_columns]
        return self.allowed[index]


# Every code is an integer: a fractional code could never be looked up exactly.
assert all(float(c).is_integer() for s in FEATURE_SPECS if s.codes is not None for c in s.codes)
DOMAIN = Domain(FEATURE_SPECS)
