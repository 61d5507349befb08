"""Evidently's two runs of a report and the one page they make.

The drift run compares every row of the window with the reference dataset: each feature with
Evidently's default test for its column type (``model.feature_specs``: numeric or
categorical) and threshold, then the served probability and class (prediction drift). The
quality run compares the labelled rows with the reference, which is labelled throughout:
Evidently's classification preset at the card's threshold, and the calibration metric of
``model.report.calibration_metric``. Each run's results on the reference are Evidently's own.
"""
from model.feature_specs import FEATURE_SPECS, FEATURES
from model.report import calibration_metric
from model.report.evidently_compat import (
    BinaryClassification,
    ClassificationPreset,
    DataDefinition,
    Dataset,
    DataDriftPreset,
    Report,
    ValueDrift,
    combine,
    text_widget,
)
from model.report.window import Window

PREDICTION_COLUMNS = ("probability", "predicted")
NUMERIC = [spec.name for spec in FEATURE_SPECS if spec.kind == "numeric"]
CATEGORICAL = [spec.name for spec in FEATURE_SPECS if spec.kind == "categorical"]


def drift_run(window: Window, reference):
    """Data drift of every feature (unless no row has features) and prediction drift."""
    columns = [*FEATURES, *PREDICTION_COLUMNS]
    definition = DataDefinition(numerical_columns=[*NUMERIC, "probability"],
                                categorical_columns=[*CATEGORICAL, "predicted"])
    metrics = [DataDriftPreset(columns=list(FEATURES))] if window.rows_with_features else []
    metrics += [ValueDrift(column=name) for name in PREDICTION_COLUMNS]
    return Report(metrics, include_tests=True).run(
        Dataset.from_pandas(window.rows[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition))


def quality_run(window: Window, reference, threshold: float):
    """Classification quality and calibration of the labelled rows, and of the reference."""
    columns = ["actual", *PREDICTION_COLUMNS]
    definition = DataDefinition(
        numerical_columns=["probability"], categorical_columns=["actual", "predicted"],
        classification=[BinaryClassification(target="actual", prediction_labels="predicted",
                                             prediction_probas="probability", pos_label=1)])
    report = Report([ClassificationPreset(probas_threshold=threshold),
                     calibration_metric.CalibrationError()], include_tests=True)
    return report.run(Dataset.from_pandas(window.labelled[columns], data_definition=definition),
                      Dataset.from_pandas(reference[columns], data_definition=definition))


def page(summary: dict, drift, quality):
    """The report's one snapshot: a header, the drift run, then the quality run (or why not)."""
    window, drift_notes = summary["window"], summary["data_drift"]
    header = [text_widget(title="accident-api offline report", text=_header_text(summary))]
    drift_intro = (f"Every prediction of the window ({window['rows']}) against the "
                   f"{summary['reference']['rows']} rows of the reference dataset: each feature "
                   "with Evidently's default test for its type, then the served probability "
                   "and class.")
    if not drift_notes["computed"]:
        drift_intro += f"\n\n**No data drift:** {drift_notes['reason']}"
    quality_notes = summary["quality"]
    quality_intro = (f"The {window['labelled_rows']} labelled predictions of the window against "
                     "the reference (the test split, labelled throughout), at the card's "
                     f"threshold {summary['model']['threshold']}.")
    if not quality_notes["computed"]:
        quality_intro += f"\n\n**Not reported:** {quality_notes['reason']}"
    return combine([
        (header, None),
        ([text_widget(title="Data and prediction drift", text=drift_intro)], drift),
        ([text_widget(title="Classification quality", text=quality_intro)], quality),
    ])


def _header_text(summary: dict) -> str:
    model, window, reference = summary["model"], summary["window"], summary["reference"]
    until = window["until"] or summary["generated_at"]
    return (f"Model **{model['name']}** version **{model['version']}** "
            f"(trained {model['trained_at']}).\n\n"
            f"Window: predictions served from {window['since']} to {until} (UTC): "
            f"**{window['rows']}** predictions, **{window['labelled_rows']}** labelled.\n\n"
            f"Reference: `{reference['file']}`, {reference['rows']} rows (the model's test "
            f"split as served). Evidently {summary['evidently']}.")
