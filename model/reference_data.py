"""The reference dataset: the test split as the model served it, stored beside the model.

Written at training as Parquet (``reference.parquet``): the 28 features of each held-out row
as the model received them (imputed with the card's fill values), the true label
(``actual``), the calibrated P(severe) (``probability``) and the class at the card's
threshold (``predicted``): the prediction log's column names, so one code path reads both.
The card pins its sha256 under ``artifacts.reference``; only the offline report
(``accident-api report``) reads it, the service never does.
"""
from pathlib import Path

import numpy as np
import pandas as pd

from model.card import REFERENCE_FILE, verify_artifact
from model.errors import ModelCorruptError, ModelNotFoundError
from model.feature_specs import FEATURES

LABEL_COLUMNS = ("actual", "probability", "predicted")
COLUMNS = (*FEATURES, *LABEL_COLUMNS)


def reference_frame(rows, actual, probabilities, threshold: float) -> pd.DataFrame:
    """The reference rows: features (float64), ``actual`` and ``predicted`` (int8),
    ``probability`` (float64).

    Parameters
    ----------
    rows : array-like (n, 28)
        The test split's rows in FEATURES order, imputed as the model received them.
    actual : array-like of int
        Their true labels (1 = severe).
    probabilities : array-like of float
        The calibrated P(severe) of each row (what the service answers).
    threshold : float
        The card's threshold: ``predicted`` is ``probability >= threshold``.

    Returns
    -------
    DataFrame
        Columns COLUMNS, one row per test row, in the split's order.
    """
    probabilities = np.asarray(probabilities, dtype="float64")
    frame = pd.DataFrame(np.asarray(rows, dtype="float64"), columns=list(FEATURES))
    frame["actual"] = np.asarray(actual).astype("int8")
    frame["probability"] = probabilities
    frame["predicted"] = (probabilities >= threshold).astype("int8")
    return frame


def write_reference(path, frame: pd.DataFrame) -> None:
    """Write ``frame`` as Parquet (zstd, no index) at ``path``."""
    frame.to_parquet(path, engine="pyarrow", compression="zstd", index=False)


def read_reference(model_dir, card: dict) -> pd.DataFrame:
    """The verified reference dataset of the model in ``model_dir`` (whose card is ``card``).

    Raises
    ------
    ModelNotFoundError
        The card names no reference dataset (a model trained before it existed), or the file
        is missing.
    ModelIntegrityError
        The file's sha256 is not the card's: it belongs to another model or was changed.
    ModelCorruptError
        The file is not Parquet, lacks columns or holds another number of rows than the card.
    """
    entry = (card.get("artifacts") or {}).get("reference")
    if not entry:
        raise ModelNotFoundError(
            f"the card of model {card.get('version')} in {model_dir} names no reference "
            f"dataset ({REFERENCE_FILE}): it was trained before the offline report existed; "
            "retrain it (`accident-api train`) to get one")
    path = verify_artifact(model_dir, card, "reference")
    try:
        frame = pd.read_parquet(path, engine="pyarrow")
    except (OSError, ValueError) as exc:
        raise ModelCorruptError(f"{path} is not a readable Parquet file ({exc}): "
                                "retrain the model") from exc
    missing = [name for name in COLUMNS if name not in frame.columns]
    if missing or len(frame) != entry.get("rows"):
        raise ModelCorruptError(
            f"{path} has {len(frame)} rows and lacks {missing}; its card says "
            f"{entry.get('rows')} rows of {len(COLUMNS)} columns: retrain the model")
    return frame[list(COLUMNS)]


def reference_entry(path: Path, frame: pd.DataFrame, sha256: str) -> dict:
    """The card's ``artifacts.reference``: file, sha256, rows and size in bytes."""
    return {"file": path.name, "sha256": sha256, "rows": int(len(frame)),
            "bytes": path.stat().st_size}
