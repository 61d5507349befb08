"""model.report.evidently_compat, the one adapter around Evidently (checked against 0.7.23):
fails when the pandas-3 stand-in is no longer needed or no longer enough, or when the public
calls the report relies on change."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
REMOVED = "infer_dtype_from_object"


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_the_stand_in_is_still_needed():
    """pandas still lacks the helper, and Evidently still imports it: once either changes,
    delete the stand-in (and this test)."""
    done = run_python("import pandas.core.dtypes.common as c; print(hasattr(c, "
                      f"'{REMOVED}'))")
    assert done.stdout.strip() == "False", "pandas has it again: remove the stand-in"
    # located, not imported: importing it is what fails without the stand-in
    package = Path(importlib.util.find_spec("evidently").submodule_search_locations[0])
    source = (package / "legacy" / "tests" / "data_integrity_tests.py").read_text()
    assert f"from pandas.core.dtypes.common import {REMOVED}" in source, \
        "Evidently no longer imports it: remove the stand-in"


@pytest.mark.slow
def test_evidently_fails_to_import_without_the_stand_in_and_imports_with_it():
    bare = run_python("import evidently")
    assert bare.returncode == 1 and f"cannot import name '{REMOVED}'" in bare.stderr
    adapted = run_python("from model.report import evidently_compat as e; print(e.VERSION)")
    assert adapted.returncode == 0, adapted.stderr
    assert adapted.stdout.strip() == "0.7.23"


@pytest.mark.slow
def test_the_stand_in_refuses_to_be_called():
    from model.report import evidently_compat

    assert evidently_compat.SHIMMED is True
    with pytest.raises(NotImplementedError, match="removed in pandas 3"):
        pd.core.dtypes.common.infer_dtype_from_object("float64")


def small_runs():
    from model.report.evidently_compat import DataDefinition, Dataset, Report, ValueDrift

    definition = DataDefinition(numerical_columns=["x"], categorical_columns=["c"])
    current = Dataset.from_pandas(pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6] * 5,
                                                "c": [0, 1] * 15}), data_definition=definition)
    reference = Dataset.from_pandas(pd.DataFrame({"x": [10.0, 20, 30, 40, 50, 60] * 5,
                                                  "c": [0, 0, 1] * 10}),
                                    data_definition=definition)
    first = Report([ValueDrift(column="x")], include_tests=True).run(current, reference)
    second = Report([ValueDrift(column="c")], include_tests=True).run(current, reference)
    return first, second


@pytest.mark.slow
def test_two_runs_combine_into_one_page(tmp_path):
    from model.report.evidently_compat import combine, quiet, text_widget

    with quiet():
        first, second = small_runs()
    page = combine([([text_widget(title="Header", text="before everything")], None),
                    ([], first), ([text_widget(title="Between", text="second run")], second)])
    exported = page.dict()
    assert [m["config"]["column"] for m in exported["metrics"]] == ["x", "c"]
    assert [t["name"] for t in exported["tests"]] == ["Value Drift for column x",
                                                      "Value Drift for column c"]
    page.save_html(str(tmp_path / "page.html"))
    html = (tmp_path / "page.html").read_text()
    assert html.index("before everything") < html.index("second run")
    assert "<script src=" not in html  # every script inline: nothing fetched at view time


@pytest.mark.slow
def test_reference_value_is_the_metrics_value_on_the_reference():
    from model.report.evidently_compat import (
        BinaryClassification,
        DataDefinition,
        Dataset,
        Report,
        reference_value,
    )
    from evidently.metrics import Accuracy  # importable once the adapter has run

    definition = DataDefinition(
        numerical_columns=["p"], categorical_columns=["y", "k"],
        classification=[BinaryClassification(target="y", prediction_labels="k",
                                             prediction_probas="p", pos_label=1)])
    frame = pd.DataFrame({"y": [0, 1, 1, 0], "p": [0.1, 0.9, 0.2, 0.7], "k": [0, 1, 0, 1]})
    reference = pd.DataFrame({"y": [0, 1, 1, 0], "p": [0.1, 0.9, 0.8, 0.2], "k": [0, 1, 1, 0]})
    snapshot = Report([Accuracy()]).run(Dataset.from_pandas(frame, data_definition=definition),
                                        Dataset.from_pandas(reference,
                                                            data_definition=definition))
    (metric,) = snapshot.dict()["metrics"]
    assert metric["value"] == 0.5
    assert reference_value(snapshot, metric["id"]) == 1.0
    assert reference_value(snapshot, "no-such-metric") is None
