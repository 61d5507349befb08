"""The served model: loaded once (gunicorn master), called once per request, measured."""
import numpy as np
from flask import current_app
from flask_smorest import abort

from accident_api import MODEL_EXTENSION
from model.errors import ModelError
from model.feature_specs import FEATURES
from model.serving import load_model
from monitoring import metrics
from monitoring.drift import DriftCounter, export_reference_ratios


def export_model_info(predictor, served: bool) -> None:
    """model_info{name, version, trained_at, source, backend}: 1 while served, 0 once replaced."""
    metrics.set_model_info(
        name=predictor.name, version=predictor.version,
        trained_at=str(predictor.card.get("trained_at", "")),
        source=str((predictor.card.get("source") or {}).get("kind", "")),
        backend=predictor.backend, value=1 if served else 0)


class ModelService:
    """A loaded, verified Predictor (`ready`) or the reason there is none (`reason`).

    `multiproc_dir` (Config.PROMETHEUS_MULTIPROC_DIR) is where each gunicorn worker keeps its
    drift counts; None in single-process mode (monitoring.drift_store).
    """

    def __init__(self, predictor=None, reason: str | None = None, record_metrics: bool = True,
                 multiproc_dir: str | None = None):
        self.predictor = predictor
        self.reason = reason
        self.record_metrics = record_metrics
        self.multiproc_dir = multiproc_dir
        self.drift = None
        if predictor is not None:
            reference = predictor.card.get("reference") or {}
            self.drift = DriftCounter(reference, FEATURES, multiproc_dir)
            export_reference_ratios(reference)
            export_model_info(predictor, served=True)

    @classmethod
    def load(cls, path: str, backend: str, record_metrics: bool = True,
             multiproc_dir: str | None = None) -> "ModelService":
        """Load and verify the model at `path`; a failure becomes a not-ready service, not a crash.

        The app stays up to answer /health/ready with the reason; gunicorn's `on_starting` hook
        refuses to serve traffic with such an app (accident_api.server).
        """
        try:
            return cls(load_model(path, backend=backend), record_metrics=record_metrics,
                       multiproc_dir=multiproc_dir)
        except ModelError as exc:
            return cls(reason=str(exc), record_metrics=record_metrics,
                       multiproc_dir=multiproc_dir)

    @property
    def ready(self) -> bool:
        return self.predictor is not None

    def predict(self, rows: np.ndarray):
        """One model call for all `rows` (n, 28 float64 in feature order), recorded in metrics."""
        if not self.record_metrics:  # METRICS_ENABLED=0: the bare model call
            return self.predictor.predict(rows)
        with metrics.InferenceTimer():
            prediction = self.predictor.predict(rows)
        metrics.record_predictions(prediction.classes, prediction.probabilities)
        metrics.recorder.observe_rows(self.drift, rows)
        return prediction


def current_model() -> ModelService:
    """The app's ModelService; aborts with 503 (and the reason) when no model is loaded."""
    service = current_app.extensions[MODEL_EXTENSION]
    if not service.ready:
        abort(503, message=f"Model not loaded: {service.reason}")
    return service


def prediction_items(prediction, version: str) -> list:
    """One response item per record, in order."""
    return [
        {"prediction": int(cls), "probability": float(prob),
         "label": metrics.LABELS[int(cls)], "model_version": version}
        for cls, prob in zip(prediction.classes, prediction.probabilities)
    ]
