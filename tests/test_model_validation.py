"""model.validation.validate_artifact: what a SIGHUP update loads and checks."""
import joblib
import pytest

from model import validation as model_update


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
