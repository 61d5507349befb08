"""Held-out metrics of P(severe) against the majority-class baseline, per split and per year."""

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

THRESHOLD = 0.5


def evaluate(y_true, probabilities, threshold: float = THRESHOLD) -> dict:
    """Held-out metrics of P(severe) at ``threshold``, the majority-class baseline beside them."""
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

    both_classes = len(np.unique(y_true)) == 2  # ROC-AUC is undefined on one class
    return {
        **scores(predicted),
        "roc_auc": float(roc_auc_score(y_true, probabilities)) if both_classes else None,
        "baseline": {
            "strategy": "majority class",
            "class": majority,
            **scores(baseline),
            "roc_auc": 0.5,
        },
    }


def evaluate_later_years(forest, imputer, later) -> dict:
    """Metrics of the fitted model on each later year's rows (imputed with the training values)."""
    results = {}
    for year in sorted(set(later.year.tolist())):
        part = later.select(later.year == year)
        rows = imputer.transform(part.frame).to_numpy("float64")
        y_true = part.target.to_numpy()
        results[str(year)] = {
            **evaluate(y_true, forest.predict_proba(rows)[:, 1]),
            "rows": int(len(rows)),
            "severe_share": float(y_true.mean()),
        }
    return results
