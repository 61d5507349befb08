"""The served model: loaded once (gunicorn's master), called once per request, measured, and
swapped for a validated update on SIGHUP.

The operator writes the new model to its own directory, repoints MODEL_PATH (a symlink) at it
and sends SIGHUP to the master (docs/operations.md). gunicorn's `on_reload` hook runs
`reload_model` in the master *before* it forks the replacement workers: a valid artifact
becomes the app's model, so every new worker serves it, while the old workers finish their
requests and exit. An invalid artifact is refused with one ERROR line and the old model keeps
serving.
"""
import numpy as np
from flask import Flask, current_app
from flask_smorest import abort

from accident_api.config import MODEL_EXTENSION
from model.errors import ModelError
from model.feature_specs import FEATURES
from model.serving import load_model
from model.validation import validate_artifact
from monitoring import metrics
from monitoring.drift import DriftCounter, export_reference_ratios


def export_model_info(predictor, served: bool) -> None:
    """model_info{name, version, trained_at, source, backend}: 1 while served, 0 once replaced."""
    metrics.set_model_info(
        name=predictor.name, version=predictor.version,
        trained_at=str(predictor.card.get("trained_at", "")),
        source=str((predictor.card.get("source") or {}).get("kind", "")),
        backend=predictor.backend, value=1 if served else 0)


class ServedModel:
    """A loaded, verified Predictor (`ready`) or the reason there is none (`reason`)."""

    def __init__(self, predictor=None, reason: str | None = None):
        self.predictor = predictor
        self.reason = reason
        self.drift = None
        if predictor is not None:
            reference = predictor.card.get("reference") or {}
            self.drift = DriftCounter(reference, FEATURES)
            export_reference_ratios(reference)
            metrics.set_reference_metrics(predictor.card["metrics"])
            export_model_info(predictor, served=True)

    @classmethod
    def install(cls, app: Flask) -> "ServedModel":
        """Load and verify the model at MODEL_PATH into `app`; a failure becomes a not-ready
        model, not a crash: the app answers /health/ready with the reason, and gunicorn's
        `on_starting` hook refuses to serve traffic with it (accident_api.server.hooks)."""
        try:
            served = cls(load_model(app.config["MODEL_PATH"], backend=app.config["MODEL_BACKEND"]))
        except ModelError as exc:
            served = cls(reason=str(exc))
        app.extensions[MODEL_EXTENSION] = served
        return served

    @property
    def ready(self) -> bool:
        return self.predictor is not None

    def predict(self, rows: np.ndarray):
        """One model call for all `rows` (n, 28 float64 in feature order), recorded in metrics."""
        with metrics.InferenceTimer():
            prediction = self.predictor.predict(rows)
        metrics.record_predictions(prediction.classes, prediction.probabilities)
        metrics.recorder.count_rows(self.drift, rows)
        return prediction


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
    app.extensions[MODEL_EXTENSION] = ServedModel(predictor)
    if old is not None:
        # an info gauge is 1 for the served model only; the sidecar drops series at 0
        export_model_info(old, served=False)
    log.info("model updated: %s -> %s (new workers serve it; old ones finish their requests)",
             old.version if old is not None else "none", predictor.version)
    return True
