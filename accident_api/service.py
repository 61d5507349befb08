"""The served model: loaded once (gunicorn's master), called once per request, measured, and
swapped for a validated update on SIGHUP.

The operator writes the new model to its own directory, repoints MODEL_PATH (a symlink) at it
and sends SIGHUP to the master (docs/operations.md). gunicorn's `on_reload` hook runs
`reload_model` in the master *before* it forks the replacement workers: a valid artifact
becomes the app's model, so every new worker serves it, while the old workers finish their
requests and exit. An invalid artifact is refused with one ERROR line and the old model keeps
serving.
"""
from pathlib import Path
from typing import NamedTuple

import numpy as np
from flask import Flask, current_app
from flask_smorest import abort

from accident_api.config import MODEL_EXTENSION
from model.errors import ModelError
from model.feature_specs import FEATURES
from model.serving import load_model
from model.validation import validate_artifact
from monitoring import metrics, quality
from monitoring.drift import DriftCounter, export_reference_ratios
from monitoring.prediction_log import PredictionLog, new_prediction_ids, utc_now

LOG_EXTENSION = "accident_api.prediction_log"  # app.extensions key of the PredictionLog


class Served(NamedTuple):
    """The answer for some rows: classes, P(severe), one prediction id per row, the version,
    and the (n, 28) mask of the values imputed first."""

    classes: np.ndarray
    probabilities: np.ndarray
    ids: list
    model_version: str
    imputed: np.ndarray


def export_model_info(predictor, served: bool) -> None:
    """model_info{name, version, trained_at, source, backend}: 1 while served, 0 once replaced."""
    metrics.set_model_info(
        name=predictor.name, version=predictor.version,
        trained_at=str(predictor.card.get("trained_at", "")),
        source=str((predictor.card.get("source") or {}).get("kind", "")),
        backend=predictor.backend, value=1 if served else 0)


class ServedModel:
    """A loaded, verified Predictor (`ready`) or the reason there is none (`reason`); every
    prediction is logged in `log` (a monitoring.prediction_log.PredictionLog, or None)."""

    def __init__(self, predictor=None, reason: str | None = None, log=None):
        self.predictor = predictor
        self.reason = reason
        self.log = log
        self.drift = None
        if predictor is not None:
            reference = predictor.card.get("reference") or {}
            self.drift = DriftCounter(reference, FEATURES)
            export_reference_ratios(reference)
            metrics.set_reference_metrics(predictor.card)
            export_model_info(predictor, served=True)

    @classmethod
    def install(cls, app: Flask) -> "ServedModel":
        """Load and verify the model at MODEL_PATH into `app`, with its prediction log.

        A model that cannot be loaded becomes a not-ready model, not a crash: the app answers
        /health/ready with the reason, and gunicorn's `on_starting` hook refuses to serve
        traffic with it (accident_api.server.hooks).
        """
        config = app.config
        log = None
        if config["PREDICTION_LOG"]:
            log = PredictionLog(
                prediction_log_url(config["PREDICTION_LOG_URL"], config["DATA_DIR"]),
                log_features=config["PREDICTION_LOG_FEATURES"],
                retention_days=config["PREDICTION_LOG_RETENTION_DAYS"],
                max_pending=config["PREDICTION_LOG_MAX_PENDING"],
                flush_seconds=config["PREDICTION_LOG_FLUSH_MS"] / 1000)
        app.extensions[LOG_EXTENSION] = log
        try:
            served = cls(load_model(config["MODEL_PATH"], backend=config["MODEL_BACKEND"]), log=log)
        except ModelError as exc:
            served = cls(reason=str(exc), log=log)
        app.extensions[MODEL_EXTENSION] = served
        return served

    @property
    def ready(self) -> bool:
        return self.predictor is not None

    def predict(self, rows: np.ndarray) -> Served:
        """One model call for all `rows` (n, 28 float64 in feature order, NaN where unknown:
        imputed with the card's training fill values first): recorded in the metrics and
        queued for the prediction log, one new prediction id per row."""
        filled, imputed = self.predictor.imputer.fill(rows)
        with metrics.InferenceTimer():
            prediction = self.predictor.predict(filled)
        version = self.predictor.version
        ids = new_prediction_ids(rows.shape[0])
        metrics.record_predictions(prediction.classes, prediction.probabilities)
        metrics.record_imputed(FEATURES, imputed)
        quality.record_expected_outcomes(prediction.classes, prediction.probabilities, version)
        metrics.recorder.count_rows(self.drift, filled)  # the reference bins hold imputed rows
        if self.log is not None:  # the inputs as sent: an unknown is logged as NULL
            self.log.add(ids, utc_now(), version, prediction.probabilities, prediction.classes,
                         rows)
        return Served(prediction.classes, prediction.probabilities, ids, version, imputed)


def prediction_log_url(url: str | None, data_dir: str) -> str:
    """The prediction log's URL: PREDICTION_LOG_URL, or the SQLite file in DATA_DIR."""
    return url or f"sqlite:///{Path(data_dir).resolve() / 'predictions.sqlite3'}"


def prediction_log() -> PredictionLog:
    """The app's prediction log; aborts with 503 when PREDICTION_LOG=0."""
    log = current_app.extensions[LOG_EXTENSION]
    if log is None:
        abort(503, message="The prediction log is off (PREDICTION_LOG=0): feedback cannot be "
                           "joined to predictions.")
    return log


def served_model() -> ServedModel:
    """The app's served model; aborts with 503 (and the reason) when none is loaded."""
    served = current_app.extensions[MODEL_EXTENSION]
    if not served.ready:
        abort(503, message=f"Model not loaded: {served.reason}")
    return served


def reload_model(app: Flask, log) -> bool:
    """Swap `app`'s model for the validated artifact at MODEL_PATH; False (old one kept) if
    refused or already served."""
    old = app.extensions[MODEL_EXTENSION].predictor
    try:
        predictor = validate_artifact(app.config["MODEL_PATH"], app.config["MODEL_BACKEND"])
    except ModelError as exc:
        still = f"still serving {old.version}" if old is not None else "no model is served"
        log.error("model update refused: %s (%s)", exc, still)
        return False
    if old is not None and predictor.version == old.version:
        log.info("model update: %s is already served; nothing to swap", old.version)
        return False
    # the new model exports its model_info; the old model's drift counts stay exported
    # (counters never go back)
    app.extensions[MODEL_EXTENSION] = ServedModel(predictor, log=app.extensions[LOG_EXTENSION])
    if old is not None:
        # an info gauge is 1 for the served model only; the sidecar drops series at 0
        export_model_info(old, served=False)
    log.info("model updated: %s -> %s (new workers serve it; old ones finish their requests)",
             old.version if old is not None else "none", predictor.version)
    return True
