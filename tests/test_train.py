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
    tables = {2021: baac.read_raw(synthetic_raw_dir)}
    train.train(tables, tmp_path, {"kind": "synthetic"}, TINY, log=quiet)
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
            {2021: baac.read_raw(synthetic_raw_dir)}, tmp_path, {"kind": "synthetic"}, TINY,
            log=quiet,
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
        {2021: baac.read_raw(synthetic_raw_dir)}, tmp_path, {"kind": "synthetic"}, TINY,
        log=messages.append,
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
    assert card["source"]["kind"] == "baac" and card["source"]["years"] == [2021]
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


PER_YEAR = 250  # synthetic accidents per year: small, both classes in every year


@pytest.fixture(scope="module")
def every_year_dir(tmp_path_factory):
    """`data synth --years 2019-2024`: each year's files in its published format, one directory."""
    raw = tmp_path_factory.mktemp("every-year")
    args = parse(["data", "synth", "--years", "2019-2024", "--accidents", str(PER_YEAR),
                  "--seed", "11", "--dest", str(raw)])
    assert args.handler(args) == 0
    return raw


def train_cli(raw, out, *extra):
    args = parse(["train", "--raw-dir", str(raw), "--out", str(out), "--n-estimators", "5",
                  "--max-depth", "6", *extra])
    return args.handler(args)


def test_cli_train_years_with_a_test_year(every_year_dir, tmp_path, capsys):
    assert train_cli(every_year_dir, tmp_path, "--years", "2019-2024", "--test-year", "2023") == 0
    card = read_card(tmp_path)
    assert card["source"]["years"] == [2019, 2020, 2021, 2022, 2023, 2024]
    assert len(card["source"]["files"]) == 24 and "Caract_2024.csv" in card["source"]["files"]
    assert card["split"]["fit_years"] == [2019, 2020, 2021, 2022]
    assert card["split"]["test_year"] == 2023
    rows = card["rows"]
    by_year = rows["by_year"]
    assert list(by_year) == ["2019", "2020", "2021", "2022", "2023", "2024"]
    assert all(by_year[y]["accidents_in"] == PER_YEAR for y in by_year)
    assert [by_year[y]["role"] for y in by_year] == ["fit"] * 4 + ["time test"] * 2
    fit_rows = sum(by_year[y]["rows_out"] for y in ("2019", "2020", "2021", "2022"))
    assert rows["train"] + rows["test"] == fit_rows
    assert rows["test_years"] == by_year["2023"]["rows_out"] + by_year["2024"]["rows_out"]
    assert rows["rows_out"] == fit_rows + rows["test_years"]
    assert rows["accidents_in"] == 6 * PER_YEAR
    later = card["metrics_by_test_year"]
    assert list(later) == ["2023", "2024"]
    for year, result in later.items():
        assert result["rows"] == by_year[year]["rows_out"]
        assert np.sum(result["confusion_matrix"]) == result["rows"]
        assert 0.5 < result["roc_auc"] <= 1 and result["baseline"]["roc_auc"] == 0.5
    assert np.sum(card["metrics"]["confusion_matrix"]) == rows["test"]  # the random split's
    out = capsys.readouterr().out
    assert "random split of [2019, 2020, 2021, 2022]" in out
    assert f"test year 2023: roc_auc {later['2023']['roc_auc']:.3f}" in out
    assert f"2024: {by_year['2024']['rows_out']} usable of {PER_YEAR} accidents (time test)" in out


def test_every_year_is_fit_on_and_tested(every_year_dir, tmp_path):
    assert train_cli(every_year_dir, tmp_path, "--years", "2019-2024", "--test-year", "2020") == 0
    card = read_card(tmp_path)
    assert card["split"]["fit_years"] == [2019]
    assert list(card["metrics_by_test_year"]) == ["2020", "2021", "2022", "2023", "2024"]
    assert card["rows"]["train"] + card["rows"]["test"] == card["rows"]["by_year"]["2019"][
        "rows_out"]


def test_without_test_year_every_year_is_in_the_random_split(every_year_dir, tmp_path):
    assert train_cli(every_year_dir, tmp_path, "--years", "2022,2024") == 0
    card = read_card(tmp_path)
    assert card["metrics_by_test_year"] == {} and card["split"]["fit_years"] == [2022, 2024]
    rows = card["rows"]
    assert rows["train"] + rows["test"] == rows["rows_out"] == sum(
        rows["by_year"][y]["rows_out"] for y in ("2022", "2024"))
    assert rows["test_years"] == 0


def test_later_years_never_reach_the_fit_or_the_imputer(every_year_dir, tmp_path, monkeypatch):
    seen = {}
    real_fit = train.Imputer.fit

    def spy_fit(self, frame):
        seen["imputer"] = set(frame["year_acc"])
        return real_fit(self, frame)

    monkeypatch.setattr(train.Imputer, "fit", spy_fit)
    train.train_from_raw(every_year_dir, tmp_path, years=(2021, 2022, 2023), test_year=2022,
                         hyperparameters=TINY, log=quiet)
    assert seen["imputer"] == {2021.0}  # year_acc: the accident's year, as in one-year training


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--years", "2019-2021", "--test-year", "2019"], "2019 leaves no earlier year"),
        (["--years", "2019-2021", "--test-year", "2024"], "2024 is not among the years"),
    ],
)
def test_cli_train_refuses_a_test_year_it_cannot_use(every_year_dir, tmp_path, capsys, argv,
                                                     message):
    assert train_cli(every_year_dir, tmp_path, *argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "model_card.json").exists()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--years", "2018-2020"], "2018 is not a supported BAAC year: 2019-2024"),
        (["train", "--test-year", "2023-2024"], "'2023-2024' is not one year"),
        (["train", "--year", "2021", "--years", "2021-2022"], "not allowed with argument"),
        (["data", "download", "--year", "2025"], "2025 is not a supported BAAC year"),
        (["data", "synth", "--years", "2024-2019"], "the range must go up"),
    ],
)
def test_cli_refuses_unsupported_years(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_train_synthetic_years(tmp_path):
    argv = ["train", "--synthetic", "--years", "2023-2024", "--test-year", "2024",
            "--accidents", "300", "--n-estimators", "5", "--out", str(tmp_path)]
    args = parse(argv)
    assert args.handler(args) == 0
    card = read_card(tmp_path)
    assert (card["source"]["kind"], card["source"]["years"]) == ("synthetic", [2023, 2024])
    assert sorted(card["source"]["files"])[:2] == ["Caract_2024.csv", "Lieux_2024.csv"]
    assert list(card["metrics_by_test_year"]) == ["2024"]
