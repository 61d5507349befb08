"""The report's results as data (``--json``): named fields, documented in docs/monitoring.md.

Drift and quality figures are Evidently's (read from its runs' exported metrics and tests,
the window's and the reference's); the confusion counts, Brier score and reliability bins are
counted here and with ``model.evaluation``, the functions the model card's figures come from.
"""
from datetime import datetime

import numpy as np

from model.evaluation import calibration_figures
from model.feature_specs import FEATURES, SPECS_BY_NAME
from model.report.evidently_compat import VERSION, reference_value

FORMAT = 1
VALUE_DRIFT = "evidently:metric_v2:ValueDrift"
DRIFTED_COLUMNS = "evidently:metric_v2:DriftedColumnsCount"
# Evidently's exported metric type -> the results' field
QUALITY_FIELDS = {
    "evidently:metric_v2:Accuracy": "accuracy",
    "evidently:metric_v2:Precision": "precision",
    "evidently:metric_v2:Recall": "recall",
    "evidently:metric_v2:F1Score": "f1",
    "evidently:metric_v2:RocAuc": "roc_auc",
    "evidently:metric_v2:LogLoss": "log_loss",
    "accident-api:metric_v2:CalibrationError": "ece",
}


def _number(value):
    return None if value is None or not np.isfinite(value) else float(value)


def _status(status) -> str:
    """An Evidently test status (a str Enum, or its value once exported) as its value."""
    return getattr(status, "value", status)


def _timestamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def drift_results(snapshot, window, columns=FEATURES) -> dict:
    """{column: {method, statistic, score, threshold, drifted}} of ``columns`` in the drift run.

    ``statistic`` is ``p_value`` (drifted when the score is below the threshold) or
    ``distance`` (drifted at or above it); ``drifted`` is the outcome of Evidently's test.
    """
    exported = snapshot.dict()
    failed = {test["metric_config"]["metric_id"] for test in exported["tests"]
              if _status(test["status"]) == "FAIL"}
    found = {}
    for metric in exported["metrics"]:
        config = metric["config"]
        if config["type"] == VALUE_DRIFT and config["column"] in columns:
            found[config["column"]] = {
                "method": config["method"],
                "statistic": "p_value" if "p_value" in config["method"] else "distance",
                "score": _number(metric["value"]), "threshold": float(config["threshold"]),
                "drifted": metric["id"] in failed}
    return {name: found[name] for name in columns if name in found}


def data_drift(snapshot, window) -> dict:
    """The ``data_drift`` section: every feature's test, which drifted, the dataset verdict."""
    if not window.rows_with_features:
        return {"computed": False, "reason": "no prediction of the window was logged with its "
                "features (PREDICTION_LOG_FEATURES=0): only prediction drift and quality",
                "features": len(FEATURES), "drifted": [], "drifted_count": 0,
                "drifted_share": 0.0, "dataset_drift": False, "by_feature": {}}
    by_feature = drift_results(snapshot, window)
    for name, entry in by_feature.items():
        entry.update(kind=SPECS_BY_NAME[name].kind, unknown_values=window.unknown_values[name])
    drifted = [name for name, entry in by_feature.items() if entry["drifted"]]
    exported = snapshot.dict()
    (count_id,) = [m["id"] for m in exported["metrics"] if m["config"]["type"] == DRIFTED_COLUMNS]
    dataset_drift = any(_status(t["status"]) == "FAIL" for t in exported["tests"]
                        if t["metric_config"]["metric_id"] == count_id)
    return {"computed": True, "reason": None, "features": len(by_feature), "drifted": drifted,
            "drifted_count": len(drifted), "drifted_share": len(drifted) / len(by_feature),
            "dataset_drift": dataset_drift, "by_feature": by_feature}


def figures(frame, evidently_values: dict) -> dict:
    """One side's quality: rows, share severe, Evidently's metrics, confusion counts, Brier
    and reliability bins of ``frame`` (columns actual, probability, predicted)."""
    actual, predicted = frame["actual"].to_numpy(), frame["predicted"].to_numpy()
    calibration = calibration_figures(actual, frame["probability"].to_numpy())
    counts = {"tp": (predicted == 1) & (actual == 1), "fp": (predicted == 1) & (actual == 0),
              "tn": (predicted == 0) & (actual == 0), "fn": (predicted == 0) & (actual == 1)}
    return {"rows": int(len(frame)), "severe_share": float(actual.mean()),
            **{name: _number(evidently_values.get(name)) for name in QUALITY_FIELDS.values()},
            "brier": calibration["brier"],
            "confusion_matrix": {cell: int(mask.sum()) for cell, mask in counts.items()},
            "reliability": calibration["reliability"]}


def quality(snapshot, window, reference, skipped: str | None, minimum: int) -> dict:
    """The ``quality`` section: the labelled rows' figures beside the reference's."""
    if snapshot is None:
        return {"computed": False, "reason": skipped, "min_labelled": minimum,
                "current": None, "reference": None, "tests": []}
    exported = snapshot.dict()
    current, on_reference = {}, {}
    for metric in exported["metrics"]:
        name = QUALITY_FIELDS.get(metric["config"]["type"])
        if name is not None:
            current[name] = metric["value"]
            on_reference[name] = reference_value(snapshot, metric["id"])
    tests = [{"name": test["name"], "status": _status(test["status"]),
              "description": test["description"]} for test in exported["tests"]]
    return {"computed": True, "reason": None, "min_labelled": minimum,
            "current": figures(window.labelled, current),
            "reference": figures(reference, on_reference), "tests": tests}


def summary(*, card, reference_entry, window, since, until, generated_at, drift, quality_section,
            ) -> dict:
    """Every section of the results, in their documented order."""
    return {
        "format": FORMAT,
        "generated_at": _timestamp(generated_at),
        "evidently": VERSION,
        "model": {"name": card.get("name"), "version": card.get("version"),
                  "trained_at": card.get("trained_at"), "threshold": card.get("threshold")},
        "reference": {"file": reference_entry["file"], "sha256": reference_entry["sha256"],
                      "rows": reference_entry["rows"]},
        "window": {"since": _timestamp(since), "until": _timestamp(until),
                   "model_version": window.model_version, "rows": int(len(window.rows)),
                   "rows_with_features": window.rows_with_features,
                   "labelled_rows": int(len(window.labelled))},
        "data_drift": data_drift(drift, window),
        "prediction_drift": drift_results(drift, window, columns=("probability", "predicted")),
        "quality": quality_section,
    }
