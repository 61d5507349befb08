"""Checks a model artifact must pass before it serves: the card's parity, a smoke prediction.

Used when the service loads a model update (SIGHUP, `accident_api.service.reload_model`); the
same `PARITY_TOLERANCE` bounds the ONNX/scikit-learn difference measured at training.
"""
import math

import numpy as np

from model.errors import ModelError, ModelVersionMismatchError
from model.feature_specs import FEATURE_SPECS
from model.serving import load_model

PARITY_TOLERANCE = 1e-6


class ArtifactRejected(ModelError):
    """The artifact loaded but failed a serving check (parity, smoke prediction)."""


def smoke_rows() -> np.ndarray:
    """Three valid rows: every feature at its documented example, lowest and highest value."""
    low = [s.codes[0] if s.codes else s.minimum for s in FEATURE_SPECS]
    high = [s.codes[-1] if s.codes else s.maximum for s in FEATURE_SPECS]
    return np.array([[s.example for s in FEATURE_SPECS], low, high], dtype="float64")


def _check_smoke(predictor, rows) -> None:
    prediction = predictor.predict(rows)
    probabilities = prediction.probabilities
    if probabilities.shape != (len(rows),) or not all(
            math.isfinite(p) and 0.0 <= p <= 1.0 for p in probabilities):
        raise ArtifactRejected(f"smoke prediction gave {probabilities!r}, not {len(rows)} "
                               "probabilities in [0, 1]")
    if set(prediction.classes.tolist()) - {0, 1}:
        raise ArtifactRejected(f"smoke prediction gave classes {prediction.classes!r}")


def _check_parity(path, predictor, rows) -> None:
    """The card's recorded ONNX/sklearn parity passed; under the sklearn backend, the ONNX
    twin's forest scores (before calibration, as at training) also agree right now.

    Under the ONNX backend the sklearn twin is *not* loaded: it is a pickle, and the ONNX
    backend's promise is that nothing is unpickled. Parity was measured on held-out rows at
    training and recorded in the card, whose sha256 entries pin both files, so a model that
    passes the hash check is the one that passed parity; the smoke prediction checks the
    ONNX file itself. Under the sklearn backend the pickle is already loaded, and loading
    the ONNX twin executes no code, so the live check costs nothing in trust.
    """
    parity = ((predictor.card.get("artifacts") or {}).get("onnx") or {}).get("parity") or {}
    if parity.get("passed") is not True:
        raise ArtifactRejected(f"the card does not record a passed ONNX parity check ({parity})")
    if predictor.backend == "onnx":
        return
    try:
        twin = load_model(path, backend="onnx")
    except ModelVersionMismatchError:
        return  # this onnxruntime cannot read the file: the card's recorded parity stands
    diff = float(np.max(np.abs(twin.forest_scores(rows) - predictor.forest_scores(rows))))
    if diff > PARITY_TOLERANCE:
        raise ArtifactRejected(f"onnx and sklearn forest scores disagree by {diff:.2e} on the "
                               "smoke rows")


def validate_artifact(path, backend: str):
    """Load the artifact at `path` (card + sha256 checked before any unpickling) and check it.

    Returns
    -------
    model.serving.Predictor

    Raises
    ------
    ModelError
        Missing, corrupt, tampered (hash), wrong library versions, parity or smoke failure.
    """
    predictor = load_model(path, backend=backend)
    rows = smoke_rows()
    _check_smoke(predictor, rows)
    _check_parity(path, predictor, rows)
    return predictor
