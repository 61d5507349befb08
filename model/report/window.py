"""The rows of a report: a prediction-log window checked against the model it is compared with.

The prediction log (``monitoring.prediction_log.PredictionLog.read``) gives one row per served
prediction with its label when one arrived. Before Evidently sees them, the window must hold
predictions, all of one model version, the version whose reference dataset the report
compares them with. Logged unknown values (NULL) are filled with the card's imputation
values, as the model received them; rows logged without features (PREDICTION_LOG_FEATURES=0)
keep their probability, class and label for prediction drift and quality.
"""
from dataclasses import dataclass

import pandas as pd

from model.feature_specs import FEATURES

MIN_LABELLED = 100


class ReportRefused(Exception):
    """The report cannot be built from this window; the message says why and what to do."""


class NoPredictionsError(ReportRefused):
    """The window holds no prediction."""


class MixedVersionsError(ReportRefused):
    """The window holds predictions of several model versions and none was chosen."""


class ReferenceMismatchError(ReportRefused):
    """The window's model version is not the one whose reference dataset was given."""


@dataclass
class Window:
    """The checked window: every row, the labelled ones, and what the features lacked."""

    model_version: str
    rows: pd.DataFrame  # FEATURES (float64, NaN where not logged), probability, predicted
    labelled: pd.DataFrame  # actual, probability, predicted of the rows with a label
    rows_with_features: int
    unknown_values: dict  # feature -> NULL values filled with the card's imputation value


def model_version_of(frame: pd.DataFrame, asked: str | None) -> str:
    """The one model version of ``frame`` (read with ``asked`` as filter, if given).

    Raises
    ------
    NoPredictionsError, MixedVersionsError
    """
    if frame.empty:
        which = f" of model version {asked}" if asked else ""
        raise NoPredictionsError(f"no prediction{which} was served in this window")
    counts = frame["model_version"].value_counts()
    if len(counts) > 1:
        listed = ", ".join(f"{version} ({count} rows)" for version, count in counts.items())
        raise MixedVersionsError(
            f"the window mixes {len(counts)} model versions: {listed}. A report compares one "
            "model with its own reference: choose one with --model-version (and --model, its "
            "directory), or narrow --since/--until to one version's time")
    return str(counts.index[0])


def check_reference(card: dict, model_version: str, model_dir) -> None:
    """Raise ReferenceMismatchError unless ``card`` is the card of ``model_version``."""
    if card.get("version") != model_version:
        raise ReferenceMismatchError(
            f"the window's predictions were served by model {model_version}, but the model "
            f"in {model_dir} is {card.get('version')}: its reference dataset describes another "
            f"model. Point --model (or MODEL_PATH) at the directory of model {model_version}")


def prepare(frame: pd.DataFrame, card: dict, model_version: str) -> Window:
    """The window's rows as the report compares them (``frame`` from PredictionLog.read)."""
    features = frame[list(FEATURES)].astype("float64")
    logged = features.notna().any(axis=1)
    unknown = features[logged].isna().sum()
    features.loc[logged] = features[logged].fillna(card.get("imputation") or {})
    rows = features.assign(probability=frame["probability"].astype("float64"),
                           predicted=frame["predicted"].astype("int64")).reset_index(drop=True)
    labelled = frame.loc[frame["actual"].notna(), ["actual", "probability", "predicted"]]
    labelled = labelled.astype({"actual": "int64", "probability": "float64",
                                "predicted": "int64"}).reset_index(drop=True)
    return Window(model_version, rows, labelled, int(logged.sum()),
                  {name: int(unknown[name]) for name in FEATURES})


def quality_skipped(labelled: pd.DataFrame, minimum: int) -> str | None:
    """Why classification quality cannot be measured on ``labelled`` (None when it can)."""
    if len(labelled) < minimum:
        return (f"only {len(labelled)} labelled prediction(s) in the window, fewer than "
                f"{minimum} (--min-labelled): classification quality is not reported; send "
                "more feedback (POST /feedback) or widen the window")
    classes = sorted(labelled["actual"].unique().tolist())
    if len(classes) < 2:
        return (f"every one of the {len(labelled)} labelled predictions is of class "
                f"{classes[0]}: ROC-AUC, precision and recall need both classes")
    return None
