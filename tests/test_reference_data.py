"""model.reference_data: the test split as served, written at training beside the model,
pinned by the card, read by the offline report only."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from model import baac
from model.card import read_card, write_card
from model.dataset import build_dataset, split_rows
from model.errors import ModelCorruptError, ModelIntegrityError, ModelNotFoundError
from model.feature_specs import FEATURES
from model.hashing import sha256_file
from model.reference_data import COLUMNS, read_reference
from model.serving import load_model
from model.train_defaults import CALIBRATION_SIZE, SEED, TEST_SIZE


@pytest.fixture
def card(trained_model_dir):
    return read_card(trained_model_dir)


@pytest.fixture
def model_copy(trained_model_dir, tmp_path):
    """A private copy of the session model that a test may damage."""
    return shutil.copytree(trained_model_dir, tmp_path / "model")


def test_the_card_pins_the_reference_file(card, trained_model_dir):
    path = trained_model_dir / "reference.parquet"
    assert card["artifacts"]["reference"] == {
        "file": "reference.parquet", "sha256": sha256_file(path),
        "rows": card["rows"]["test"], "bytes": path.stat().st_size}


def test_the_reference_is_the_test_split_as_the_model_served_it(card, trained_model_dir,
                                                                  synthetic_raw_dir):
    reference = read_reference(trained_model_dir, card)
    assert tuple(reference.columns) == COLUMNS
    assert reference[list(FEATURES)].dtypes.unique().tolist() == [np.dtype("float64")]
    assert reference.dtypes[["actual", "predicted"]].tolist() == [np.dtype("int8")] * 2
    # the same split as training, imputed with the card's fill values
    data = build_dataset({2021: baac.read_raw(synthetic_raw_dir)})
    test = split_rows(data.target.to_numpy(), TEST_SIZE, CALIBRATION_SIZE, SEED).test
    rows = data.frame.iloc[test].fillna(card["imputation"])
    assert np.array_equal(reference[list(FEATURES)].to_numpy(), rows.to_numpy("float64"))
    assert reference["actual"].tolist() == data.target.iloc[test].tolist()
    # what the scikit-learn backend answers for those rows, and the class at the threshold
    served = load_model(trained_model_dir, "sklearn").predict(rows.to_numpy("float64"))
    assert np.array_equal(reference["probability"].to_numpy(), served.probabilities)
    assert reference["predicted"].tolist() == served.classes.tolist()


def test_the_reference_reproduces_the_cards_test_metrics(card, trained_model_dir):
    reference = read_reference(trained_model_dir, card)
    accuracy = (reference["actual"] == reference["predicted"]).mean()
    assert accuracy == pytest.approx(card["metrics"]["accuracy"], abs=1e-15)
    tn, fp, fn, tp = (int(((reference["actual"] == a) & (reference["predicted"] == p)).sum())
                      for a, p in ((0, 0), (0, 1), (1, 0), (1, 1)))
    assert [[tn, fp], [fn, tp]] == card["metrics"]["confusion_matrix"]


def test_the_service_never_needs_the_reference(model_copy):
    (model_copy / "reference.parquet").unlink()
    assert load_model(model_copy).predict(np.zeros((1, len(FEATURES)))).classes.shape == (1,)


def test_a_changed_reference_is_refused(model_copy):
    card = read_card(model_copy)
    frame = pd.read_parquet(model_copy / "reference.parquet")
    frame.loc[0, "vma"] = 130.0
    frame.to_parquet(model_copy / "reference.parquet", index=False)
    with pytest.raises(ModelIntegrityError, match="reference.parquet has sha256 .* the file "
                                                  "was changed or replaced"):
        read_reference(model_copy, card)


def test_a_card_without_a_reference_says_to_retrain(model_copy):
    card = read_card(model_copy)
    del card["artifacts"]["reference"]
    with pytest.raises(ModelNotFoundError, match=r"names no reference dataset "
                                                 r"\(reference.parquet\).*retrain"):
        read_reference(model_copy, card)


def test_a_missing_reference_file_says_to_retrain(model_copy):
    (model_copy / "reference.parquet").unlink()
    with pytest.raises(ModelNotFoundError, match="no reference model file at .*accident-api "
                                                 "train"):
        read_reference(model_copy, read_card(model_copy))


@pytest.mark.parametrize("damage, message", [
    (lambda path: path.write_bytes(b"not parquet"), "not a readable Parquet file"),
    (lambda path: pd.read_parquet(path).drop(columns="actual").to_parquet(path),
     r"lacks \['actual'\]"),
    (lambda path: pd.read_parquet(path).head(3).to_parquet(path), "has 3 rows"),
])
def test_a_damaged_reference_with_a_matching_hash_is_refused(model_copy, damage, message):
    path = model_copy / "reference.parquet"
    damage(path)
    card = read_card(model_copy)
    card["artifacts"]["reference"]["sha256"] = sha256_file(path)
    write_card(model_copy, card)
    with pytest.raises(ModelCorruptError, match=message):
        read_reference(model_copy, read_card(model_copy))


def test_get_model_lists_the_reference_among_the_artifacts(client, trained_model_dir):
    artifacts = client.get("/model").get_json()["artifacts"]
    expected = json.loads((trained_model_dir / "model_card.json").read_text())["artifacts"]
    assert artifacts["reference"] == expected["reference"]
