"""The one place that imports Evidently (the `report` extra): checked against Evidently 0.7.23.

Evidently 0.7.23 (and every release checked back to 0.4.40) imports
``pandas.core.dtypes.common.infer_dtype_from_object`` at module level, in
``evidently.legacy.tests.data_integrity_tests``, which ``import evidently`` loads. pandas 3
removed that private helper, so with the project's pandas 3.1.1 ``import evidently`` fails
with an ImportError before anything runs. Its only caller is the legacy ``TestColumnsType``
test, which the report never uses: before importing Evidently, this module gives pandas the
name back as a stand-in that raises if it is ever called, instead of pinning an older pandas.
``tests/test_evidently_compat.py`` fails as soon as the stand-in is no longer needed, or no
longer enough.

Everything the report needs from Evidently is re-exported from here. Two runs (the drift of
every window row, the quality of the labelled ones) become one page through Evidently's own
serialisation model (``Snapshot.to_snapshot_model`` / ``Snapshot.load_model``).
"""
import warnings
from contextlib import contextmanager

import pandas.core.dtypes.common as _pandas_dtypes

_REMOVED_IN_PANDAS_3 = "infer_dtype_from_object"


def _removed_in_pandas_3(dtype):
    """Stand-in for the helper pandas 3 removed; Evidently imports it, the report never calls it."""
    raise NotImplementedError(
        f"pandas.core.dtypes.common.{_REMOVED_IN_PANDAS_3} was removed in pandas 3: Evidently's "
        "legacy TestColumnsType cannot run with this pandas")


SHIMMED = not hasattr(_pandas_dtypes, _REMOVED_IN_PANDAS_3)
if SHIMMED:
    setattr(_pandas_dtypes, _REMOVED_IN_PANDAS_3, _removed_in_pandas_3)

# Evidently only after the stand-in is in place (E402 on purpose)
import evidently  # noqa: E402
from evidently import BinaryClassification, DataDefinition, Dataset, Report  # noqa: E402,F401
from evidently.core.metric_types import (  # noqa: E402,F401
    SingleValue,
    SingleValueCalculation,
    SingleValueMetric,
    metric_tests_widget,
)
from evidently.core.report import Snapshot, metric_tests_stats  # noqa: E402
from evidently.legacy.renderers.html_widgets import (  # noqa: E402,F401
    CounterData,
    counter,
    plotly_figure,
    text_widget,
)
from evidently.metrics import ValueDrift  # noqa: E402,F401
from evidently.presets import ClassificationPreset, DataDriftPreset  # noqa: E402,F401

VERSION = evidently.__version__


@contextmanager
def quiet():
    """Evidently's runs without its numeric and deprecation warnings: a constant column (year_acc
    of a one-year model) makes numpy divide by a zero deviation in Evidently's correlations, and
    Evidently still calls pandas APIs that pandas 3.1 deprecates; the results already say
    what the reader needs (a score, a test), the warnings would only bury them on stderr."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def reference_value(snapshot: Snapshot, metric_id: str):
    """The value a metric of ``snapshot`` took on the reference data (None if not computed)."""
    try:
        return snapshot.context.get_reference_metric_result(metric_id).value
    except BaseException as exc:  # Evidently's ReferenceMetricNotFound is a BaseException
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return None


def combine(sections: list) -> Snapshot:
    """One snapshot of ``sections``, each ``(widgets, snapshot or None)``: the widgets, then
    the snapshot's, in order. ``save_html`` renders it as one page; ``dict`` lists every run's
    metrics and tests; the test summary covers them all, as one run's summary covers its own."""
    parts = [(widgets, snapshot, snapshot.to_snapshot_model() if snapshot else None)
             for widgets, snapshot in sections]
    runs = [(snapshot, model) for _, snapshot, model in parts if model is not None]
    merged = runs[0][1].copy()
    merged.widgets = [widget for widgets, _, model in parts
                      for widget in [*widgets, *(model.widgets if model else [])]]
    merged.metric_results = {key: value for _, model in runs
                             for key, value in model.metric_results.items()}
    merged.top_level_metrics = [metric for _, model in runs for metric in model.top_level_metrics]
    tests = [test for snapshot, _ in runs for test in snapshot.tests_results]
    merged.tests_widgets = [metric_tests_stats(tests), metric_tests_widget(tests)] if tests else []
    return Snapshot.load_model(merged)
