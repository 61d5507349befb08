"""The model card: written beside the artifact at training, read and verified before any loading."""

import json
import platform
from importlib.metadata import version
from pathlib import Path

from model.errors import (
    ModelCorruptError,
    ModelIntegrityError,
    ModelNotFoundError,
    ModelVersionMismatchError,
)
from model.feature_specs import FEATURES
from model.hashing import sha256_file

CARD_FILE = "model_card.json"
JOBLIB_FILE = "model.joblib"
ONNX_FILE = "model.onnx"
CALIBRATION_FILE = "calibration.json"
REFERENCE_FILE = "reference.parquet"  # read by the offline report only (model.reference_data)
ARTIFACT_FILES = {"joblib": JOBLIB_FILE, "onnx": ONNX_FILE, "calibration": CALIBRATION_FILE,
                  "reference": REFERENCE_FILE}
REQUIRED_KEYS = (
    "name",
    "version",
    "trained_at",
    "source",
    "threshold",
    "metrics",
    "libraries",
    "artifacts",
    "features",
    "reference",
    # cards written before calibrated probabilities are refused: the API promises a
    # calibrated `probability`, and an identity map would break that promise silently
    "calibration",
    "imputation",  # the fill values the API imputes unknowns with, as training did
)
# Library versions a backend needs to match exactly: unpickling a forest written by another
# scikit-learn (or numpy major) is unsafe or breaks; the ONNX file is read by any onnxruntime.
PINNED_FOR_BACKEND = {"sklearn": ("scikit-learn", "numpy"), "onnx": ()}


def library_versions() -> dict:
    """Versions of the libraries that write and read the artifact, as recorded in the card.

    Read from the installed distributions' metadata, not by importing the libraries: a server
    checking its card must not load scikit-learn, scipy, onnx or skl2onnx just for a version.
    """
    return {
        "python": platform.python_version(),
        "scikit-learn": version("scikit-learn"),
        "numpy": version("numpy"),
        "onnx": version("onnx"),
        "onnxruntime": version("onnxruntime"),
        "skl2onnx": version("skl2onnx"),
    }


def write_card(model_dir, card: dict) -> Path:
    """Write ``card`` as ``model_card.json`` in ``model_dir`` and return its path."""
    path = Path(model_dir) / CARD_FILE
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_card(model_dir) -> dict:
    """Read and minimally validate the card of ``model_dir``.

    Raises
    ------
    ModelNotFoundError
        No card (or no directory).
    ModelCorruptError
        The card is not JSON or lacks required keys.
    """
    path = Path(model_dir) / CARD_FILE
    if not path.is_file():
        raise ModelNotFoundError(
            f"no model card at {path}: run `accident-api train --synthetic --out {model_dir}`"
        )
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelCorruptError(
            f"model card {path} is not valid JSON ({exc}): retrain the model"
        ) from exc
    missing = [key for key in REQUIRED_KEYS if not isinstance(card, dict) or key not in card]
    if missing:
        raise ModelCorruptError(
            f"model card {path} lacks {missing} (written by an older or other version of the "
            "training code): retrain the model with this version (`accident-api train`)"
        )
    return card


def verify_artifact(model_dir, card: dict, kind: str) -> Path:
    """Check feature order and the sha256 of the ``kind`` file (a key of ARTIFACT_FILES:
    "joblib", "onnx", "calibration", "reference") against the card.

    Returns the artifact's path; raises before anything is loaded from it.

    Raises
    ------
    ModelIntegrityError
        Feature order differs from ``model.feature_specs.FEATURES`` or the hash does not match.
    ModelNotFoundError
        The artifact file is missing.
    """
    names = tuple(f.get("name") if isinstance(f, dict) else f for f in card["features"] or ())
    if names != FEATURES:
        raise ModelIntegrityError(
            f"the card's feature order {names} is not this code's {FEATURES}: "
            "retrain the model with this version"
        )
    entry = card["artifacts"].get(kind) or {}
    path = Path(model_dir) / entry.get("file", ARTIFACT_FILES[kind])
    if not path.is_file():
        raise ModelNotFoundError(
            f"no {kind} model file at {path}: run `accident-api train --out {model_dir}`"
        )
    actual = sha256_file(path)
    if actual != entry.get("sha256"):
        raise ModelIntegrityError(
            f"{path} has sha256 {actual[:12]}... but its card says "
            f"{str(entry.get('sha256'))[:12]}...: the file was changed or replaced; "
            "it will not be loaded. Retrain or restore the matching files."
        )
    return path


def check_versions(card: dict, backend: str) -> None:
    """Raise ModelVersionMismatchError when a library the backend needs changed since training."""
    current = library_versions()
    for library in PINNED_FOR_BACKEND[backend]:
        trained = card["libraries"].get(library)
        now = current[library]
        same = (
            trained == now
            if library == "scikit-learn"
            else str(trained).split(".")[0] == now.split(".")[0]
        )
        if not same:
            raise ModelVersionMismatchError(
                f"model trained with {library} {trained}, this environment has {now}: install "
                f"{library}=={trained}, serve the ONNX backend (MODEL_BACKEND=onnx), or retrain"
            )
