"""model.card: write/read round trip, validation, artifact verification, version checks."""

import json

import pytest

from model import card as card_module
from model.errors import (
    ModelCorruptError,
    ModelIntegrityError,
    ModelNotFoundError,
    ModelVersionMismatchError,
)
from model.features import FEATURES
from model.hashing import sha256_file


@pytest.fixture
def card(trained_model_dir):
    return card_module.read_card(trained_model_dir)


def test_card_has_the_contract_keys(card, trained_model_dir):
    for key in (
        "name",
        "version",
        "trained_at",
        "source",
        "rows",
        "class_balance",
        "hyperparameters",
        "threshold",
        "metrics",
        "libraries",
        "artifacts",
        "features",
        "reference",
        "calibration",
    ):
        assert key in card, key
    assert card["name"] == "accident-severity-rf"
    assert card["version"] == sha256_file(trained_model_dir / "model.joblib")[:12]
    assert card["artifacts"]["onnx"]["sha256"] == sha256_file(trained_model_dir / "model.onnx")
    assert card["artifacts"]["onnx"]["parity"]["passed"] is True
    assert card["artifacts"]["calibration"] == {
        "file": "calibration.json", "sha256": sha256_file(trained_model_dir / "calibration.json")}
    assert card["source"]["kind"] == "baac" and len(card["source"]["files"]) == 4
    assert set(card["libraries"]) == {
        "python",
        "scikit-learn",
        "numpy",
        "onnx",
        "onnxruntime",
        "skl2onnx",
    }
    assert card["threshold"] == 0.5
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "brier", "ece",
                "confusion_matrix", "baseline"):
        assert key in card["metrics"]
    assert tuple(f["name"] for f in card["features"]) == FEATURES
    for feature in card["features"]:
        assert {
            "name",
            "kind",
            "dtype",
            "description",
            "source",
            "codes",
            "minimum",
            "maximum",
            "seen_min",
            "seen_max",
        } <= set(feature)
        assert feature["seen_min"] <= feature["seen_max"]
    assert set(card["reference"]) == set(FEATURES)
    for reference in card["reference"].values():
        assert (
            len(reference["edges"]) <= 9 and len(reference["ratios"]) == len(reference["edges"]) + 1
        )


def test_round_trip(tmp_path, card):
    card_module.write_card(tmp_path, card)
    assert card_module.read_card(tmp_path) == card
    json.loads((tmp_path / "model_card.json").read_text())  # plain JSON, readable by any tool


def test_missing_card(tmp_path):
    with pytest.raises(ModelNotFoundError, match="accident-api train"):
        card_module.read_card(tmp_path)


@pytest.mark.parametrize("text", ["{", "[]", '{"name": "x"}', "\xff"])
def test_corrupt_card(tmp_path, text):
    (tmp_path / "model_card.json").write_text(text, encoding="latin-1")
    with pytest.raises(ModelCorruptError):
        card_module.read_card(tmp_path)


def test_verify_returns_the_path(card, trained_model_dir):
    assert (
        card_module.verify_artifact(trained_model_dir, card, "joblib")
        == trained_model_dir / "model.joblib"
    )
    assert (
        card_module.verify_artifact(trained_model_dir, card, "onnx")
        == trained_model_dir / "model.onnx"
    )
    assert (
        card_module.verify_artifact(trained_model_dir, card, "calibration")
        == trained_model_dir / "calibration.json"
    )


@pytest.mark.parametrize("kind", ["joblib", "onnx", "calibration", "reference"])
def test_verify_rejects_another_hash(card, trained_model_dir, kind):
    card["artifacts"][kind]["sha256"] = "0" * 64
    with pytest.raises(ModelIntegrityError, match="will not be loaded"):
        card_module.verify_artifact(trained_model_dir, card, kind)


def test_a_card_without_calibration_is_refused_with_what_to_do(card, tmp_path):
    del card["calibration"]
    card_module.write_card(tmp_path, card)
    with pytest.raises(ModelCorruptError, match=r"lacks \['calibration'\] \(written by an "
                                                r"older .*retrain the model with this version"):
        card_module.read_card(tmp_path)


@pytest.mark.parametrize("features", [None, ["place"], [{"nom": "place"}]])
def test_verify_rejects_malformed_feature_lists(card, trained_model_dir, features):
    card["features"] = features
    with pytest.raises(ModelIntegrityError, match="feature order"):
        card_module.verify_artifact(trained_model_dir, card, "onnx")


def test_verify_rejects_missing_feature(card, trained_model_dir):
    card["features"] = card["features"][:-1]
    with pytest.raises(ModelIntegrityError, match="feature order"):
        card_module.verify_artifact(trained_model_dir, card, "onnx")


@pytest.mark.parametrize(
    "library,version,backend,raises",
    [
        ("scikit-learn", "1.0.0", "sklearn", True),
        ("numpy", "1.26.4", "sklearn", True),
        ("scikit-learn", "1.0.0", "onnx", False),
        ("onnxruntime", "0.1.0", "onnx", False),
    ],
)
def test_check_versions(card, library, version, backend, raises):
    card["libraries"][library] = version
    if raises:
        with pytest.raises(ModelVersionMismatchError, match=f"{library} {version}"):
            card_module.check_versions(card, backend)
    else:
        card_module.check_versions(card, backend)


def test_current_versions_pass(card):
    card_module.check_versions(card, "sklearn")
    card_module.check_versions(card, "onnx")
