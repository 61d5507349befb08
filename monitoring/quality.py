"""Model quality counts: expected confusion cells at prediction time, realised ones from labels.

Without labels, a calibrated probability p says what to expect (confidence-based performance
estimation): a prediction of "severe" is a true positive with probability p and a false
positive otherwise; a prediction of "not severe" is a false negative with probability p and a
true negative otherwise. Summed over many predictions these expected cells estimate accuracy,
precision, recall and F1 before any label arrives (prometheus/rules/model_quality.yml); the
labels, counted once each when their feedback is recorded, give the realised ones.
"""
import numpy as np

from monitoring import metrics


def record_expected_outcomes(classes: np.ndarray, probabilities: np.ndarray,
                             model_version: str) -> None:
    """Add one request's expected tp/fp/tn/fn to model_expected_outcome_total."""
    severe = classes == 1
    p = probabilities
    cells = {"tp": float(p[severe].sum()), "fp": float((1 - p[severe]).sum()),
             "fn": float(p[~severe].sum()), "tn": float((1 - p[~severe]).sum())}
    record = metrics.recorder
    for outcome, amount in cells.items():
        if amount:
            record.inc(metrics.EXPECTED_OUTCOME.labels(outcome=outcome,
                                                       model_version=model_version), amount)


def outcome(predicted: int, actual: int) -> str:
    """The confusion-matrix cell of one labelled prediction (1 = severe)."""
    return ("tp" if actual else "fp") if predicted else ("fn" if actual else "tn")


def record_feedback(recorded, received_at) -> None:
    """Count each newly recorded label (model_feedback_total, its delay) and each refusal."""
    record = metrics.recorder
    for item in recorded:
        if item.status == "recorded":
            record.inc(metrics.FEEDBACK.labels(outcome=outcome(item.predicted, item.actual),
                                               model_version=item.model_version))
            record.observe(metrics.FEEDBACK_DELAY,
                           max((received_at - item.served_at).total_seconds(), 0.0))
        elif item.status != "already_recorded":
            record_feedback_rejected(item.status)


def record_feedback_rejected(reason: str, count: int = 1) -> None:
    """Count refused feedback: invalid, unknown, purged or conflict."""
    metrics.recorder.inc(metrics.FEEDBACK_REJECTED.labels(reason=reason), count)
