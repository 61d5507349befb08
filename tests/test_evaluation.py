"""model.evaluation: reliability bins, expected calibration error, Brier score, served metrics."""

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from model.evaluation import (
    CALIBRATION_BINS,
    calibration_figures,
    evaluate,
    evaluate_served,
    expected_calibration_error,
    reliability_bins,
)


def sample(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    probabilities = rng.random(n)
    # values on every edge, 0 and 1: each must fall in the bin calibration_curve puts it in
    probabilities[:11] = np.linspace(0, 1, 11)
    return (rng.random(n) < probabilities**1.5).astype(int), probabilities


def test_reliability_bins_are_calibration_curves_uniform_bins():
    y_true, probabilities = sample()
    bins = reliability_bins(y_true, probabilities)
    observed, predicted = calibration_curve(y_true, probabilities, n_bins=CALIBRATION_BINS,
                                            strategy="uniform")
    filled = [b for b in bins if b["rows"]]
    np.testing.assert_allclose([b["observed"] for b in filled], observed, rtol=0, atol=1e-12)
    np.testing.assert_allclose([b["mean_predicted"] for b in filled], predicted, rtol=0,
                               atol=1e-12)
    assert sum(b["rows"] for b in bins) == len(probabilities)
    assert [(b["lower"], b["upper"]) for b in bins] == [(i / 10, (i + 1) / 10) for i in range(10)]


def test_an_empty_bin_has_rows_zero_and_no_means():
    bins = reliability_bins(np.array([0, 1, 1]), np.array([0.05, 0.95, 0.91]))
    assert [b["rows"] for b in bins] == [1, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    assert bins[4] == {"lower": 0.4, "upper": 0.5, "rows": 0, "mean_predicted": None,
                       "observed": None}
    assert bins[9]["mean_predicted"] == pytest.approx(0.93) and bins[9]["observed"] == 1.0


def test_ece_is_the_rows_weighted_gap_per_bin():
    # bin [0, 0.1]: 2 rows at 0.05, 1 severe -> |0.05 - 0.5|; bin (0.9, 1]: 2 rows, both severe
    y_true = np.array([0, 1, 1, 1])
    probabilities = np.array([0.05, 0.05, 0.95, 0.91])
    expected = 2 / 4 * 0.45 + 2 / 4 * abs(0.93 - 1.0)
    assert expected_calibration_error(reliability_bins(y_true, probabilities)) == pytest.approx(
        expected)


def test_calibration_figures_and_metrics_describe_the_probabilities_given():
    y_true, probabilities = sample(seed=1)
    figures = calibration_figures(y_true, probabilities)
    assert figures["brier"] == pytest.approx(brier_score_loss(y_true, probabilities))
    assert figures["ece"] == expected_calibration_error(figures["reliability"])
    metrics = evaluate(y_true, probabilities)
    assert (metrics["brier"], metrics["ece"]) == (figures["brier"], figures["ece"])
    assert "reliability" not in metrics  # the per-bin data lives in the card's calibration


def test_evaluate_served_scores_the_calibrated_probabilities():
    y_true, scores = sample(seed=2)

    def calibration(values):
        return values**1.5  # the true P(severe) of `sample`

    served, before_after = evaluate_served(y_true, scores, calibration)
    assert served == evaluate(y_true, calibration(scores))
    assert before_after["before"] == calibration_figures(y_true, scores)
    assert before_after["after"] == calibration_figures(y_true, calibration(scores))
    assert before_after["after"]["ece"] < before_after["before"]["ece"] - 0.05
    assert before_after["after"]["brier"] < before_after["before"]["brier"]
