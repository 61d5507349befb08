"""model.calibration: the isotonic map is scikit-learn's, written as JSON and read back exactly."""

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from model.calibration import IsotonicMap, fit_isotonic, read_calibration, write_calibration
from model.errors import ModelCorruptError


def scores_and_labels(n, seed, decimals=None):
    """Scores on [0, 1] and labels drawn with a miscalibrated P(1) = score ** 2."""
    rng = np.random.default_rng(seed)
    scores = rng.beta(2, 3, n)
    if decimals is not None:
        scores = np.round(scores, decimals)  # ties, like a forest's averaged leaf fractions
    return scores, (rng.random(n) < scores**2).astype(int)


def held_out_points(calibration, seed):
    """Fresh scores, every breakpoint and its neighbours, and values beyond both ends."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.random(5000), calibration.x_, np.nextafter(calibration.x_, 2),
                           np.nextafter(calibration.x_, -1), [-0.5, 0.0, 1.0, 1.5]])


@pytest.mark.parametrize("decimals", [None, 2])
def test_the_map_equals_sklearn_isotonic_regression_with_clip(decimals):
    scores, labels = scores_and_labels(4000, seed=1, decimals=decimals)
    regression = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1, increasing=True)
    regression.fit(scores, labels)
    calibration = fit_isotonic(scores, labels)
    np.testing.assert_array_equal(calibration.x_, regression.X_thresholds_)
    points = held_out_points(calibration, seed=2)
    np.testing.assert_array_equal(calibration(points), regression.predict(points))
    # beyond the calibration scores the end values hold (clip), never an extrapolation
    assert calibration(np.array([-0.5, 1.5])).tolist() == [calibration.y_[0], calibration.y_[-1]]


def test_the_map_corrects_a_miscalibrated_score():
    scores, labels = scores_and_labels(20000, seed=3)
    calibration = fit_isotonic(scores, labels)
    # true P(1) = score ** 2: at 0.5 the calibrated value is near 0.25, not 0.5
    assert calibration(np.array([0.5]))[0] == pytest.approx(0.25, abs=0.04)
    assert (np.diff(calibration(np.linspace(0, 1, 101))) >= 0).all()


def test_one_distinct_score_gives_a_constant_map():
    calibration = fit_isotonic(np.full(10, 0.3), np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 1]))
    assert len(calibration) == 1
    assert calibration(np.array([0.0, 0.3, 0.9])).tolist() == [0.3, 0.3, 0.3]


def test_json_round_trip_is_exact(tmp_path):
    scores, labels = scores_and_labels(3000, seed=4)
    calibration = fit_isotonic(scores, labels)
    write_calibration(tmp_path / "calibration.json", calibration)
    entry = json.loads((tmp_path / "calibration.json").read_text())
    assert (entry["method"], entry["out_of_bounds"]) == ("isotonic", "clip")
    again = read_calibration(tmp_path / "calibration.json")
    np.testing.assert_array_equal(again.x_, calibration.x_)
    np.testing.assert_array_equal(again.y_, calibration.y_)
    points = held_out_points(calibration, seed=5)
    np.testing.assert_array_equal(again(points), calibration(points))


GOOD = {"method": "isotonic", "out_of_bounds": "clip", "x": [0.1, 0.5, 0.9], "y": [0.0, 0.4, 1.0]}


@pytest.mark.parametrize(
    "text,reason",
    [
        ("{not json", "Expecting property name"),
        ("[]", "not a JSON object"),
        (json.dumps({**GOOD, "method": "sigmoid"}), "'sigmoid'"),
        (json.dumps({**GOOD, "out_of_bounds": "nan"}), "'nan'"),
        (json.dumps({**GOOD, "x": [0.1, 0.1, 0.9]}), "strictly increasing"),
        (json.dumps({**GOOD, "y": [0.0, 0.5, 0.4]}), "non-decreasing"),
        (json.dumps({**GOOD, "y": [0.0, 0.5, 1.5]}), "lie in"),
        (json.dumps({**GOOD, "y": [-0.1, 0.5, 1.0]}), "lie in"),
        (json.dumps({**GOOD, "x": [0.1, 0.5]}), "equal length"),
        (json.dumps({**GOOD, "x": [], "y": []}), "equal length"),
        (json.dumps({**GOOD, "x": None}), "equal length"),
        (json.dumps({**GOOD, "y": ["a", "b", "c"]}), "could not convert"),
        ('{"method": "isotonic", "out_of_bounds": "clip", "x": [0.1, NaN], "y": [0, 1]}',
         "finite"),
    ],
)
def test_an_unusable_map_is_refused_with_the_reason(tmp_path, text, reason):
    path = tmp_path / "calibration.json"
    path.write_text(text)
    with pytest.raises(ModelCorruptError, match=f"calibration map .*({reason}).*retrain"):
        read_calibration(path)


def test_a_valid_map_reads(tmp_path):
    (tmp_path / "calibration.json").write_text(json.dumps(GOOD))
    calibration = read_calibration(tmp_path / "calibration.json")
    assert isinstance(calibration, IsotonicMap)
    assert calibration(np.array([0.0, 0.3, 0.5, 1.0])).tolist() == pytest.approx(
        [0.0, 0.2, 0.4, 1.0])
