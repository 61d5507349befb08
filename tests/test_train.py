"""model.train and model.cli: split, no-leak imputation, metrics vs baseline, ONNX parity, CLI."""

import argparse
import json

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from model import baac, cli, train
from model.card import read_card
from model.hashing import sha256_file
from model.serving import load_model

TINY = {"n_estimators": 10, "max_depth": 6, "min_samples_leaf": 5}


def quiet(message):
    """Swallow training progress in tests."""


def test_trained_model_is_better_than_the_baseline(trained_model_dir):
    card = read_card(trained_model_dir)
    metrics = card["metrics"]
    assert metrics["roc_auc"] > 0.7  # synthetic severity depends on real risk factors
    assert metrics["accuracy"] > metrics["baseline"]["accuracy"]
    assert metrics["f1"] > metrics["baseline"]["f1"]
    assert metrics["baseline"]["roc_auc"] == 0.5
    assert np.sum(metrics["confusion_matrix"]) == card["rows"]["test"]
    assert card["rows"]["train"] + card["rows"]["test"] == card["rows"]["rows_out"]


def test_split_is_stratified(trained_model_dir):
    balance = read_card(trained_model_dir)["class_balance"]
    assert balance["train_severe_share"] == pytest.approx(balance["test_severe_share"], abs=0.01)


def test_imputation_never_sees_the_test_split(synthetic_raw_dir, tmp_path, monkeypatch):
    seen = {}
    real_split, real_fit = train.train_test_split, train.Imputer.fit

    def spy_split(*args, **kwargs):
        parts = real_split(*args, **kwargs)
        seen["test"] = set(parts[1].index)
        return parts

    def spy_fit(self, frame):
        seen["fit"] = set(frame.index)
        return real_fit(self, frame)

    monkeypatch.setattr(train, "train_test_split", spy_split)
    monkeypatch.setattr(train.Imputer, "fit", spy_fit)
    train.train(baac.read_raw(synthetic_raw_dir), tmp_path, {"kind": "synthetic"}, TINY, log=quiet)
    assert seen["fit"] and seen["test"] and not seen["fit"] & seen["test"]


def test_parity_failure_fails_training_loudly(synthetic_raw_dir, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    impostor = RandomForestClassifier(n_estimators=3, random_state=0).fit(
        rng.normal(size=(200, 28)), rng.integers(0, 2, 200)
    )
    real_export = train.export_onnx
    monkeypatch.setattr(train, "export_onnx", lambda forest: real_export(impostor))
    with pytest.raises(train.ParityError, match="disagrees"):
        train.train(
            baac.read_raw(synthetic_raw_dir), tmp_path, {"kind": "synthetic"}, TINY, log=quiet
        )
    assert not (tmp_path / "model_card.json").exists()


def test_parity_is_recorded(trained_model_dir):
    parity = read_card(trained_model_dir)["artifacts"]["onnx"]["parity"]
    assert parity["passed"] and parity["same_class"] == parity["rows"] > 0
    assert parity["max_abs_diff_probability"] <= parity["tolerance"]


def test_saved_forest_is_single_threaded(trained_model_dir):
    import joblib

    assert joblib.load(trained_model_dir / "model.joblib").n_jobs == 1


def test_progress_is_reported(synthetic_raw_dir, tmp_path):
    messages = []
    train.train(
        baac.read_raw(synthetic_raw_dir), tmp_path, {"kind": "synthetic"}, TINY, log=messages.append
    )
    text = "\n".join(messages)
    for step in (
        "building features",
        "usable accidents",
        "fitting RandomForest",
        "ROC-AUC",
        "ONNX",
        "wrote",
    ):
        assert step in text


def test_train_on_the_real_sample(baac_sample_dir, tmp_path):
    card = train.train_from_raw(baac_sample_dir, tmp_path, hyperparameters=TINY, log=quiet)
    assert card["source"]["kind"] == "baac" and card["source"]["year"] == 2021
    assert card["source"]["files"]["usagers-2021.csv"] == sha256_file(
        baac_sample_dir / "usagers-2021.csv"
    )
    assert card["rows"]["accidents_in"] == 1120
    assert card["metrics"]["roc_auc"] > 0.6
    for backend in ("onnx", "sklearn"):
        assert load_model(tmp_path, backend).version == card["version"]


def parse(argv):
    parser = argparse.ArgumentParser(prog="accident-api")
    commands = parser.add_subparsers(dest="command", required=True)
    cli.add_data_command(commands)
    cli.add_train_command(commands)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "--help"],
        ["data", "download", "--help"],
        ["data", "synth", "--help"],
        ["train", "--help"],
    ],
)
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code == 0
    assert "usage: accident-api" in capsys.readouterr().out


def test_cli_synth_then_train(tmp_path, capsys):
    args = parse(
        ["data", "synth", "--accidents", "500", "--seed", "3", "--dest", str(tmp_path / "raw")]
    )
    assert args.handler(args) == 0
    args = parse(
        [
            "train",
            "--raw-dir",
            str(tmp_path / "raw"),
            "--out",
            str(tmp_path / "m"),
            "--n-estimators",
            "5",
            "--max-depth",
            "none",
            "--min-samples-leaf",
            "3",
        ]
    )
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "roc_auc" in out and "majority baseline" in out
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    assert (
        card["hyperparameters"]["max_depth"] is None
        and card["hyperparameters"]["n_estimators"] == 5
    )


def test_cli_train_synthetic(tmp_path):
    argv = ["train", "--synthetic", "--accidents", "800", "--n-estimators", "5", "--out", str(tmp_path)]
    args = parse(argv)
    assert args.handler(args) == 0
    source = read_card(tmp_path)["source"]
    assert (source["kind"], source["accidents"], len(source["files"])) == ("synthetic", 800, 4)


def test_cli_train_missing_raw_dir(tmp_path, capsys):
    args = parse(["train", "--raw-dir", str(tmp_path / "none"), "--out", str(tmp_path / "m")])
    assert args.handler(args) == 2
    assert "accident-api data" in capsys.readouterr().err


def test_cli_defaults_are_the_chosen_hyperparameters():
    args = parse(["train"])
    assert (args.n_estimators, args.max_depth, args.min_samples_leaf) == tuple(
        train.DEFAULT_HYPERPARAMETERS[k] for k in ("n_estimators", "max_depth", "min_samples_leaf")
    )
