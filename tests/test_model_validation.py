"""model.validation.validate_artifact: what a SIGHUP update loads and checks."""
import shutil

import joblib
import numpy as np
import pytest

from model import card as card_module, validation as model_update
from model.errors import ModelIntegrityError


def test_onnx_backend_update_never_unpickles(trained_model_dir, monkeypatch):
    """The README promises the ONNX backend unpickles nothing, SIGHUP updates included."""
    def refuse(*args, **kwargs):
        raise AssertionError("joblib.load called under the ONNX backend")
    monkeypatch.setattr(joblib, "load", refuse)
    predictor = model_update.validate_artifact(trained_model_dir, "onnx")
    assert predictor.backend == "onnx"


def test_sklearn_backend_update_checks_the_onnx_twin_live(trained_model_dir, monkeypatch):
    loaded = []
    real = model_update.load_model

    def spy(path, backend="onnx"):
        loaded.append(backend)
        return real(path, backend=backend)
    monkeypatch.setattr(model_update, "load_model", spy)
    model_update.validate_artifact(trained_model_dir, "sklearn")
    assert loaded == ["sklearn", "onnx"]


def test_a_card_without_passed_parity_is_refused(trained_model_dir, monkeypatch):
    predictor = model_update.load_model(trained_model_dir, backend="onnx")
    predictor.card["artifacts"]["onnx"]["parity"] = {"passed": False}
    monkeypatch.setattr(model_update, "load_model", lambda path, backend: predictor)
    with pytest.raises(model_update.ArtifactRejected, match="parity"):
        model_update.validate_artifact(trained_model_dir, "onnx")


def test_the_smoke_rows_get_calibrated_probabilities(trained_model_dir):
    for backend in ("onnx", "sklearn"):
        predictor = model_update.validate_artifact(trained_model_dir, backend)
        rows = model_update.smoke_rows()
        probabilities = predictor.predict_proba(rows)
        np.testing.assert_array_equal(probabilities,
                                      predictor.calibration(predictor.forest_scores(rows)))
        np.testing.assert_array_equal(predictor.predict(rows).classes,
                                      probabilities >= predictor.card["threshold"])


@pytest.fixture
def model_copy(trained_model_dir, tmp_path):
    return shutil.copytree(trained_model_dir, tmp_path / "model")


@pytest.mark.parametrize("backend", ["onnx", "sklearn"])
def test_an_update_with_a_changed_calibration_map_is_refused(model_copy, backend):
    path = model_copy / "calibration.json"
    path.write_text(path.read_text().replace('"y": [', '"y": [0.0, ', 1))
    with pytest.raises(ModelIntegrityError, match="calibration.json has sha256"):
        model_update.validate_artifact(model_copy, backend)


def test_sklearn_backend_update_refuses_an_onnx_twin_with_another_forest(model_copy,
                                                                         alt_model_dir):
    """The live twin check compares the forests' scores: another model's ONNX file (its hash
    put in the card, as a careless copy would) is caught before it can serve."""
    shutil.copy(alt_model_dir / "model.onnx", model_copy / "model.onnx")
    card = card_module.read_card(model_copy)
    card["artifacts"]["onnx"]["sha256"] = card_module.sha256_file(model_copy / "model.onnx")
    card_module.write_card(model_copy, card)
    with pytest.raises(model_update.ArtifactRejected, match="forest scores disagree"):
        model_update.validate_artifact(model_copy, "sklearn")
