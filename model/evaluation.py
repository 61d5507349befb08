"""Held-out metrics of P(severe) against the majority-class baseline, per split and per year,
and the calibration figures (Brier score, expected calibration error, reliability diagram)."""

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

THRESHOLD = 0.5
# Equal-width bins of [0, 1]: isotonic calibration outputs a few distinct values (steps), so
# equal-frequency edges would collapse onto them; equal width keeps before and after comparable.
CALIBRATION_BINS = 10


def evaluate(y_true, probabilities, threshold: float = THRESHOLD) -> dict:
    """Held-out metrics of P(severe) at ``threshold``, the majority-class baseline beside them.

    ``brier`` and ``ece`` (expected calibration error) describe ``probabilities`` themselves.
    """
    predicted = (probabilities >= threshold).astype(int)
    majority = int(np.bincount(y_true, minlength=2).argmax())
    baseline = np.full_like(y_true, majority)

    def scores(pred):
        return {
            "accuracy": float(accuracy_score(y_true, pred)),
            "precision": float(precision_score(y_true, pred, zero_division=0)),
            "recall": float(recall_score(y_true, pred, zero_division=0)),
            "f1": float(f1_score(y_true, pred, zero_division=0)),
            "confusion_matrix": confusion_matrix(y_true, pred, labels=[0, 1]).tolist(),
        }

    return {
        **scores(predicted),
        "roc_auc": _roc_auc(y_true, probabilities),
        **calibration_figures(y_true, probabilities, with_bins=False),
        "baseline": {
            "strategy": "majority class",
            "class": majority,
            **scores(baseline),
            "roc_auc": 0.5,
        },
    }


def _roc_auc(y_true, probabilities):
    both_classes = len(np.unique(y_true)) == 2  # ROC-AUC is undefined on one class
    return float(roc_auc_score(y_true, probabilities)) if both_classes else None


def reliability_bins(y_true, probabilities, n_bins: int = CALIBRATION_BINS) -> list:
    """Reliability-diagram data: each equal-width bin's rows, mean P(severe) and share severe.

    A probability on an inner edge falls in the lower bin, as in scikit-learn's
    ``calibration_curve(strategy="uniform")``, whose points are the non-empty bins' means here.

    Returns
    -------
    list of dict
        ``n_bins`` entries: lower, upper, rows, mean_predicted and observed (null when empty).
    """
    probabilities = np.asarray(probabilities, dtype="float64")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.searchsorted(edges[1:-1], probabilities)
    rows = np.bincount(index, minlength=n_bins)
    predicted = np.bincount(index, weights=probabilities, minlength=n_bins)
    observed = np.bincount(index, weights=np.asarray(y_true, dtype="float64"), minlength=n_bins)
    return [
        {
            "lower": round(float(edges[b]), 12),  # 0.3, not linspace's 0.30000000000000004
            "upper": round(float(edges[b + 1]), 12),
            "rows": int(rows[b]),
            "mean_predicted": float(predicted[b] / rows[b]) if rows[b] else None,
            "observed": float(observed[b] / rows[b]) if rows[b] else None,
        }
        for b in range(n_bins)
    ]


def expected_calibration_error(bins: list) -> float:
    """ECE: the rows-weighted mean of |mean P(severe) - share severe| over ``bins``."""
    total = sum(b["rows"] for b in bins)
    return float(sum(b["rows"] / total * abs(b["mean_predicted"] - b["observed"])
                     for b in bins if b["rows"]))


def calibration_figures(y_true, probabilities, with_bins: bool = True) -> dict:
    """Brier score and ECE of ``probabilities`` (and, ``with_bins``, ROC-AUC and the bins)."""
    bins = reliability_bins(y_true, probabilities)
    figures = {
        "brier": float(brier_score_loss(y_true, probabilities, labels=[0, 1])),
        "ece": expected_calibration_error(bins),
    }
    if with_bins:
        figures.update(roc_auc=_roc_auc(y_true, probabilities), reliability=bins)
    return figures


def evaluate_served(y_true, scores, calibration) -> tuple:
    """The served model on one split: metrics of the calibrated probabilities, and the
    calibration's ``{"before": ..., "after": ...}`` figures (forest scores vs calibrated)."""
    probabilities = calibration(scores)
    before_after = {
        "before": calibration_figures(y_true, scores),
        "after": calibration_figures(y_true, probabilities),
    }
    return evaluate(y_true, probabilities), before_after


def evaluate_later_years(score, calibration, imputer, later) -> tuple:
    """The served model on each later year's rows (imputed with the training values).

    Parameters
    ----------
    score : callable
        rows -> the forest's P(severe) scores.
    calibration : callable
        scores -> calibrated P(severe) (what the service answers).
    imputer : model.impute.Imputer
        Fitted on the training rows.
    later : model.dataset.Dataset
        Rows of the test years.

    Returns
    -------
    tuple of dict
        year -> metrics (+ rows, severe_share), and year -> calibration before/after.
    """
    metrics, calibration_by_year = {}, {}
    for year in sorted(set(later.year.tolist())):
        part = later.select(later.year == year)
        rows = imputer.transform(part.frame).to_numpy("float64")
        y_true = part.target.to_numpy()
        served, before_after = evaluate_served(y_true, score(rows), calibration)
        metrics[str(year)] = {**served, "rows": int(len(rows)),
                              "severe_share": float(y_true.mean())}
        calibration_by_year[str(year)] = before_after
    return metrics, calibration_by_year
