"""Load a verified model artifact and predict P(severe) with ONNX Runtime or scikit-learn.

``load_model`` checks the card and the files' sha256 *before* anything is deserialised, so a
tampered or swapped file is never unpickled. Either backend computes the forest's score; the
isotonic calibration map beside it (``model.calibration``) turns that into the probability
served. Both backends are set up for single-row latency: one thread per call, no per-call
pool, one model call per ``predict`` (batches included). The ONNX session is created at load
time, so gunicorn's ``preload_app`` shares it with its workers. joblib (and, through the
pickle, scikit-learn and scipy) is imported only when the scikit-learn backend loads: an
ONNX-backend server never imports them.
"""

from typing import NamedTuple

import numpy as np
import onnxruntime as ort

from model.calibration import read_calibration
from model.card import check_versions, read_card, verify_artifact
from model.errors import ModelCorruptError
from model.feature_specs import FEATURES
from model.impute import Imputer

BACKENDS = ("onnx", "sklearn")


class Prediction(NamedTuple):
    """Classes (int64, 1 = severe) and P(severe) (float64) for each input row."""

    classes: np.ndarray
    probabilities: np.ndarray


class _OnnxBackend:
    """ONNX Runtime session tuned for single-row latency (1 intra/inter-op thread, sequential)."""

    def __init__(self, path):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelCorruptError(
                f"cannot load ONNX model {path} ({exc}): retrain the model"
            ) from exc
        self.input_name = self.session.get_inputs()[0].name
        self.outputs = ["probabilities"]

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        return self.session.run(self.outputs, {self.input_name: rows})[0][:, 1]


class _SklearnBackend:
    """The joblib forest with ``n_jobs=1``: no joblib thread pool spun up per call."""

    def __init__(self, path):
        import joblib  # here, not at module level: the ONNX backend never needs it

        try:
            forest = joblib.load(path)  # only reached after the sha256 check
        except Exception as exc:  # unpickling can raise nearly anything on a damaged file
            raise ModelCorruptError(f"cannot unpickle {path} ({exc}): retrain the model") from exc
        if getattr(forest, "n_features_in_", None) != len(FEATURES) or list(
            getattr(forest, "classes_", [])
        ) != [0, 1]:
            raise ModelCorruptError(
                f"{path} is not a binary forest over {len(FEATURES)} features: retrain"
            )
        forest.set_params(n_jobs=1, verbose=0)
        self.forest = forest

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        return self.forest.predict_proba(rows)[:, 1]


class Predictor:
    """A loaded, verified model: ``predict``/``predict_proba`` on float64 rows in FEATURES order.

    ``calibration`` maps the forest's scores to the served probabilities
    (``model.calibration.IsotonicMap``). ``imputer`` holds the card's training fill values:
    ``imputer.fill(rows)`` imputes unknowns (NaN) as training did, before ``predict``.
    """

    def __init__(self, card: dict, backend: str, engine, calibration, imputer: Imputer):
        self.card = card
        self.imputer = imputer
        self.name = card["name"]
        self.version = card["version"]
        self.backend = backend
        self.threshold = float(card["threshold"])
        self.feature_names = FEATURES
        self.calibration = calibration
        self._engine = engine

    def forest_scores(self, rows) -> np.ndarray:
        """The forest's uncalibrated P(severe) score of each row (array-like (n, 28)).

        What the ONNX/scikit-learn parity is measured on; one model call.
        """
        rows = np.ascontiguousarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != len(FEATURES):
            raise ValueError(f"expected rows of shape (n, {len(FEATURES)}), got {rows.shape}")
        return np.asarray(self._engine.predict_proba(rows), dtype=np.float64)

    def predict_proba(self, rows) -> np.ndarray:
        """Calibrated P(severe) for each row of ``rows`` (array-like (n, 28)); one model call."""
        return self.calibration(self.forest_scores(rows))

    def predict(self, rows) -> Prediction:
        """Classes (calibrated P(severe) >= the card's threshold) and calibrated probabilities;
        one model call."""
        probabilities = self.predict_proba(rows)
        return Prediction((probabilities >= self.threshold).astype(np.int64), probabilities)


def load_model(path="models", backend: str = "onnx") -> Predictor:
    """Verify the artifact in directory ``path`` against its card, then load it.

    Parameters
    ----------
    path : str or Path
        Model directory (model.joblib, model.onnx, calibration.json, model_card.json).
    backend : {"onnx", "sklearn"}
        Which artifact serves: ONNX Runtime (default, fastest) or the scikit-learn forest.

    Returns
    -------
    Predictor

    Raises
    ------
    ModelNotFoundError, ModelCorruptError, ModelIntegrityError, ModelVersionMismatchError
        Each names the problem and what to do; nothing is unpickled before the hash check.
        A card without valid ``imputation`` fill values is refused (ModelCorruptError): the
        model could not answer unknowns as it was trained.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown model backend {backend!r}: use one of {BACKENDS}")
    card = read_card(path)
    artifact = verify_artifact(path, card, "onnx" if backend == "onnx" else "joblib")
    calibration = read_calibration(verify_artifact(path, card, "calibration"))
    check_versions(card, backend)
    imputer = Imputer.from_card(card)
    engine = _OnnxBackend(artifact) if backend == "onnx" else _SklearnBackend(artifact)
    return Predictor(card, backend, engine, calibration, imputer)
