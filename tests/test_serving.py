"""model.serving: verified loading, each loading error, both backends and their parity."""

import json
import re
import shutil

import numpy as np
import pytest

from model import baac, card as card_module, features
from model.errors import (
    ModelCorruptError,
    ModelIntegrityError,
    ModelNotFoundError,
    ModelVersionMismatchError,
)
from model.features import FEATURES
from model.serving import Prediction, load_model


@pytest.fixture
def model_copy(trained_model_dir, tmp_path):
    """A private copy of the session model that a test may damage."""
    return shutil.copytree(trained_model_dir, tmp_path / "model")


@pytest.fixture(scope="module")
def rows(synthetic_raw_dir):
    """Real feature rows of the synthetic data, imputed like training does."""
    frame, _, _ = features.build_features(baac.read_raw(synthetic_raw_dir))
    return frame.fillna(frame.median()).to_numpy("float64")[:500]


@pytest.mark.parametrize("backend", ["onnx", "sklearn"])
def test_load_and_predict(trained_model_dir, rows, backend):
    predictor = load_model(trained_model_dir, backend=backend)
    assert predictor.backend == backend
    assert predictor.name == "accident-severity-rf"
    assert predictor.version == predictor.card["version"] and len(predictor.version) == 12
    assert predictor.feature_names == FEATURES
    result = predictor.predict(rows)
    assert isinstance(result, Prediction)
    assert result.classes.dtype == np.int64 and result.probabilities.dtype == np.float64
    assert result.classes.shape == result.probabilities.shape == (len(rows),)
    assert ((result.probabilities >= 0) & (result.probabilities <= 1)).all()
    np.testing.assert_array_equal(result.classes, (result.probabilities >= 0.5).astype(np.int64))
    assert 0 < result.classes.mean() < 1  # the model is not constant on varied rows
    np.testing.assert_array_equal(predictor.predict_proba(rows[:1]), result.probabilities[:1])


@pytest.mark.parametrize("backend", ["onnx", "sklearn"])
def test_the_served_probability_is_the_calibrated_forest_score(trained_model_dir, rows,
                                                               backend):
    predictor = load_model(trained_model_dir, backend)
    breakpoints = json.loads((trained_model_dir / "calibration.json").read_text())
    scores = predictor.forest_scores(rows)
    expected = np.interp(scores, breakpoints["x"], breakpoints["y"])
    result = predictor.predict(rows)
    np.testing.assert_array_equal(result.probabilities, expected)
    np.testing.assert_array_equal(result.classes, (expected >= predictor.card["threshold"]))
    assert not np.array_equal(expected, scores)  # the map is not the identity


def test_onnx_and_sklearn_agree(trained_model_dir, rows):
    onnx_model, sklearn_model = (load_model(trained_model_dir, b) for b in ("onnx", "sklearn"))
    # the forests agree within the parity tolerance (ONNX's tree ensemble outputs float32) ...
    score_gap = np.abs(onnx_model.forest_scores(rows) - sklearn_model.forest_scores(rows))
    assert score_gap.max() < 1e-6
    # ... so the calibrated probabilities within the map's steepest slope times that gap
    calibration = sklearn_model.calibration
    slope = np.max(np.diff(calibration.y_) / np.diff(calibration.x_))
    onnx_result, sklearn_result = onnx_model.predict(rows), sklearn_model.predict(rows)
    assert np.max(np.abs(onnx_result.probabilities - sklearn_result.probabilities)) <= (
        slope * score_gap.max())
    np.testing.assert_array_equal(onnx_result.classes, sklearn_result.classes)


@pytest.mark.parametrize("feature", ["lat", "long"])
def test_parity_holds_next_to_every_split_threshold(trained_model_dir, rows, feature):
    """Values a hair below each threshold: scikit-learn rounds X to float32 before comparing, so
    a double-input ONNX graph would branch differently here without the float32 rounding."""
    forest = load_model(trained_model_dir, "sklearn")._engine.forest
    index = FEATURES.index(feature)
    thresholds = np.concatenate(
        [tree.tree_.threshold[tree.tree_.feature == index] for tree in forest.estimators_]
    )
    assert len(thresholds) > 10
    probe = np.repeat(rows[:1], len(thresholds), axis=0)
    probe[:, index] = np.nextafter(thresholds, -np.inf)
    onnx_p = load_model(trained_model_dir, "onnx").forest_scores(probe)
    sklearn_p = forest.predict_proba(probe)[:, 1]
    assert np.max(np.abs(onnx_p - sklearn_p)) < 1e-6


def test_one_model_call_per_batch(trained_model_dir, rows):
    predictor = load_model(trained_model_dir, "onnx")
    calls = []
    real_run = predictor._engine.session.run
    predictor._engine.session = type(
        "Spy", (), {"run": lambda self, *a: calls.append(1) or real_run(*a)}
    )()
    predictor.predict(rows)
    assert calls == [1]


def test_serving_configuration(trained_model_dir):
    forest = load_model(trained_model_dir, "sklearn")._engine.forest
    assert forest.n_jobs == 1
    options = load_model(trained_model_dir, "onnx")._engine.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (1, 1)


def test_wrong_shape_is_rejected(trained_model_dir):
    with pytest.raises(ValueError, match="shape"):
        load_model(trained_model_dir).predict(np.zeros((2, 27)))


def test_unknown_backend(trained_model_dir):
    with pytest.raises(ValueError, match="backend"):
        load_model(trained_model_dir, backend="torch")


def test_missing_directory(tmp_path):
    with pytest.raises(ModelNotFoundError, match="accident-api train"):
        load_model(tmp_path / "nowhere")


@pytest.mark.parametrize("backend,name", [("onnx", "model.onnx"), ("sklearn", "model.joblib"),
                                          ("onnx", "calibration.json"),
                                          ("sklearn", "calibration.json")])
def test_missing_artifact(model_copy, backend, name):
    (model_copy / name).unlink()
    with pytest.raises(ModelNotFoundError, match=name):
        load_model(model_copy, backend)


def test_card_not_json(model_copy):
    (model_copy / "model_card.json").write_text("{not json")
    with pytest.raises(ModelCorruptError, match="JSON"):
        load_model(model_copy)


def test_card_missing_keys(model_copy):
    (model_copy / "model_card.json").write_text(json.dumps({"name": "x"}))
    with pytest.raises(ModelCorruptError, match="lacks"):
        load_model(model_copy)


def test_card_without_imputation_is_refused(model_copy):
    card = card_module.read_card(model_copy)
    del card["imputation"]
    card_module.write_card(model_copy, card)
    with pytest.raises(ModelCorruptError, match=r"lacks \['imputation'\].*retrain"):
        load_model(model_copy)


@pytest.mark.parametrize("feature, value, message", [
    ("vma", None, "no fill value for 'vma' (got None)"),
    ("lat", "48.8", "no fill value for 'lat' (got '48.8')"),
    ("catu", 9.0, "fill value for 'catu' (9.0) is outside its valid domain"),
    ("vma", -1.0, "fill value for 'vma' (-1.0) is outside its valid domain"),
])
def test_card_with_a_bad_fill_value_is_refused(model_copy, feature, value, message):
    card = card_module.read_card(model_copy)
    card["imputation"][feature] = value
    card_module.write_card(model_copy, card)
    with pytest.raises(ModelCorruptError, match=re.escape(message)):
        load_model(model_copy)


def test_the_predictor_imputes_with_its_cards_values(trained_model_dir):
    predictor = load_model(trained_model_dir)
    assert predictor.imputer.fill_values_ == predictor.card["imputation"]


@pytest.mark.parametrize("backend,name", [("onnx", "model.onnx"), ("sklearn", "model.joblib"),
                                          ("sklearn", "calibration.json")])
def test_tampered_artifact_is_never_loaded(model_copy, backend, name, monkeypatch):
    with (model_copy / name).open("ab") as handle:
        handle.write(b"\0")
    loaded = []
    monkeypatch.setattr("joblib.load", lambda *a, **k: loaded.append(a))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_model(model_copy, backend)
    assert loaded == []


def test_feature_order_mismatch(model_copy):
    card = card_module.read_card(model_copy)
    card["features"][0], card["features"][1] = card["features"][1], card["features"][0]
    card_module.write_card(model_copy, card)
    with pytest.raises(ModelIntegrityError, match="feature order"):
        load_model(model_copy)


@pytest.mark.parametrize(
    "backend,kind,name,message",
    [("sklearn", "joblib", "model.joblib", "unpickle"), ("onnx", "onnx", "model.onnx", "ONNX"),
     ("onnx", "calibration", "calibration.json", "calibration map")],
)
def test_corrupt_file_with_matching_hash(model_copy, backend, kind, name, message):
    (model_copy / name).write_bytes(b"garbage")
    card = card_module.read_card(model_copy)
    card["artifacts"][kind]["sha256"] = card_module.sha256_file(model_copy / name)
    card_module.write_card(model_copy, card)
    with pytest.raises(ModelCorruptError, match=message):
        load_model(model_copy, backend)


def test_a_card_from_before_calibration_is_refused(model_copy):
    """Serving it under an identity map would answer uncalibrated scores as probabilities."""
    card = card_module.read_card(model_copy)
    del card["calibration"], card["artifacts"]["calibration"]
    card_module.write_card(model_copy, card)
    (model_copy / "calibration.json").unlink()
    for backend in ("onnx", "sklearn"):
        with pytest.raises(ModelCorruptError, match=r"lacks \['calibration'\].*retrain"):
            load_model(model_copy, backend)


def test_sklearn_version_mismatch(model_copy):
    card = card_module.read_card(model_copy)
    card["libraries"]["scikit-learn"] = "0.24.2"
    card_module.write_card(model_copy, card)
    with pytest.raises(ModelVersionMismatchError, match="scikit-learn 0.24.2"):
        load_model(model_copy, "sklearn")
    assert (
        load_model(model_copy, "onnx").backend == "onnx"
    )  # ONNX does not depend on the pickle format
