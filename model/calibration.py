"""The isotonic calibration map of the forest's P(severe) scores: fitted at training, served.

The map is scikit-learn's ``IsotonicRegression(out_of_bounds="clip")`` written out as its
breakpoints (``X_thresholds_``, ``y_thresholds_``) in a small JSON file beside the model, whose
sha256 the card pins like the other artifacts. Serving applies it with ``numpy.interp``, which
interpolates linearly between breakpoints and holds the end values beyond them, as the
regression's ``predict`` does after clipping: no pickle and no scikit-learn at serving time.
"""

import json

import numpy as np

from model.errors import ModelCorruptError

METHOD = "isotonic"
OUT_OF_BOUNDS = "clip"


class IsotonicMap:
    """A non-decreasing piecewise-linear map of [0, 1] scores to calibrated probabilities.

    Parameters
    ----------
    x, y : sequence of float
        Breakpoints: ``x`` strictly increasing, ``y`` non-decreasing in [0, 1], same length >= 1.

    Raises
    ------
    ValueError
        The breakpoints do not describe such a map.
    """

    def __init__(self, x, y):
        x = np.asarray(x, dtype="float64")
        y = np.asarray(y, dtype="float64")
        if x.ndim != 1 or x.shape != y.shape or x.size == 0:
            raise ValueError(f"breakpoints need x and y of one equal length >= 1, got "
                             f"{x.shape} and {y.shape}")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError("breakpoints must be finite")
        if (np.diff(x) <= 0).any() or (np.diff(y) < 0).any():
            raise ValueError("breakpoints must have x strictly increasing, y non-decreasing")
        if y[0] < 0 or y[-1] > 1:
            raise ValueError(f"calibrated values must lie in [0, 1], got {y[0]}..{y[-1]}")
        self.x_ = x
        self.y_ = y

    def __call__(self, scores) -> np.ndarray:
        """Calibrated P(severe) of each score (float64)."""
        return np.interp(np.asarray(scores, dtype="float64"), self.x_, self.y_)

    def __len__(self) -> int:
        return int(self.x_.size)

    def to_dict(self) -> dict:
        """The JSON form: method, out_of_bounds and the breakpoints (floats round-trip exactly)."""
        return {"method": METHOD, "out_of_bounds": OUT_OF_BOUNDS,
                "x": [float(v) for v in self.x_], "y": [float(v) for v in self.y_]}


def fit_isotonic(scores, y_true) -> IsotonicMap:
    """Fit the isotonic map of ``scores`` to the labels ``y_true`` (the calibration split).

    Parameters
    ----------
    scores : array-like of float
        The forest's P(severe) on the calibration rows (never its training rows).
    y_true : array-like of int
        Their labels (1 = severe).

    Returns
    -------
    IsotonicMap
    """
    from sklearn.isotonic import IsotonicRegression  # training only: serving never needs it

    regression = IsotonicRegression(
        y_min=0.0, y_max=1.0, increasing=True, out_of_bounds=OUT_OF_BOUNDS
    ).fit(np.asarray(scores, dtype="float64"), np.asarray(y_true, dtype="float64"))
    return IsotonicMap(regression.X_thresholds_, regression.y_thresholds_)


def write_calibration(path, calibration: IsotonicMap) -> None:
    """Write the map as JSON at ``path``."""
    text = json.dumps(calibration.to_dict(), indent=1)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")


def read_calibration(path) -> IsotonicMap:
    """Read the map written by ``write_calibration`` (its sha256 already checked by the caller).

    Raises
    ------
    ModelCorruptError
        Not JSON, another method, or breakpoints that are not a valid map.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            entry = json.loads(handle.read())
        if not isinstance(entry, dict):
            raise ValueError("not a JSON object")
        if (entry.get("method"), entry.get("out_of_bounds")) != (METHOD, OUT_OF_BOUNDS):
            raise ValueError(f"method {entry.get('method')!r} / out_of_bounds "
                             f"{entry.get('out_of_bounds')!r} is not {METHOD!r} / "
                             f"{OUT_OF_BOUNDS!r}")
        return IsotonicMap(entry.get("x"), entry.get("y"))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ModelCorruptError(
            f"calibration map {path} is unusable ({exc}): retrain the model"
        ) from exc
