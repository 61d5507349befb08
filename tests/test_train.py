"""model.train and model.cli: split, no-leak imputation, metrics vs baseline, ONNX parity, CLI."""

import argparse
import json

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import train_test_split

from model import baac, cli, train
from model.card import read_card
from model.dataset import Dataset, build_dataset, split_rows
from model.evaluation import calibration_figures, evaluate
from model.hashing import sha256_file
from model.impute import Imputer
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
    rows = card["rows"]
    assert rows["train"] + rows["calibration"] + rows["test"] == rows["rows_out"]


def test_split_is_stratified(trained_model_dir):
    balance = read_card(trained_model_dir)["class_balance"]
    assert balance["train_severe_share"] == pytest.approx(balance["test_severe_share"], abs=0.01)
    assert balance["calibration_severe_share"] == pytest.approx(
        balance["test_severe_share"], abs=0.01)


def test_the_three_splits_are_disjoint_and_cover_every_row():
    target = np.random.default_rng(0).random(1000) < 0.4
    split = split_rows(target, test_size=0.2, calibration_size=0.25, seed=3)
    parts = [set(part.tolist()) for part in split]
    assert [len(part) for part in parts] == [600, 200, 200]
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    assert set.union(*parts) == set(range(1000))
    for part in split:
        assert target[part].mean() == pytest.approx(target.mean(), abs=0.01)
    # the test rows are those of a plain stratified train/test split with the same seed
    _, plain_test = train_test_split(np.arange(1000), test_size=0.2, stratify=target,
                                     random_state=3)
    np.testing.assert_array_equal(split.test, plain_test)
    again = split_rows(target, test_size=0.2, calibration_size=0.25, seed=3)
    for part, same in zip(split, again):
        np.testing.assert_array_equal(part, same)


@pytest.mark.parametrize("sizes,name", [((0.0, 0.2), "test_size 0.0"),
                                        ((0.2, 1.0), "calibration_size 1.0")])
def test_a_split_share_outside_zero_one_is_refused(sizes, name):
    with pytest.raises(ValueError, match=f"{name} is not a share strictly between 0 and 1"):
        split_rows(np.array([0, 1] * 50), *sizes, seed=0)


@pytest.fixture
def training_spy(monkeypatch):
    """Record the split, the imputer's frame, the forest's rows and the calibration's scores."""
    seen = {}
    real_split, real_impute, real_forest = train.split_rows, train.Imputer.fit, \
        train.RandomForestClassifier.fit
    real_isotonic = train.fit_isotonic

    def spy_split(target, *args, **kwargs):
        seen["target"], seen["split"] = target, real_split(target, *args, **kwargs)
        return seen["split"]

    def spy_impute(self, frame):
        seen["imputer"] = frame
        return real_impute(self, frame)

    def spy_forest(self, rows, y):
        seen["forest_rows"], seen["forest_y"] = rows, y
        seen["forest"] = self
        return real_forest(self, rows, y)

    def spy_isotonic(scores, y):
        seen["isotonic_scores"], seen["isotonic_y"] = scores, y
        return real_isotonic(scores, y)

    monkeypatch.setattr(train, "split_rows", spy_split)
    monkeypatch.setattr(train.Imputer, "fit", spy_impute)
    monkeypatch.setattr(train.RandomForestClassifier, "fit", spy_forest)
    monkeypatch.setattr(train, "fit_isotonic", spy_isotonic)
    return seen


def test_forest_imputer_and_calibration_each_see_only_their_split(
        synthetic_raw_dir, tmp_path, training_spy):
    tables = {2021: baac.read_raw(synthetic_raw_dir)}
    card = train.train(tables, tmp_path, {"kind": "synthetic"}, TINY, log=quiet)
    data = build_dataset(tables)
    split = training_spy["split"]
    assert len(split.train) + len(split.calibration) + len(split.test) == len(data.target)
    assert not (set(split.train) & set(split.calibration) or set(split.train) & set(split.test)
                or set(split.calibration) & set(split.test))
    assert (len(split.train), len(split.calibration), len(split.test)) == (
        card["rows"]["train"], card["rows"]["calibration"], card["rows"]["test"])
    # the imputer learns from the forest's training rows only, the forest fits those rows
    assert training_spy["imputer"].index.equals(data.frame.index[split.train])
    fill = Imputer().fit(data.frame.iloc[split.train])
    expected = fill.transform(data.frame.iloc[split.train]).to_numpy("float64")
    np.testing.assert_array_equal(training_spy["forest_rows"], expected)
    # the calibration map is fitted on the calibration rows' forest scores and labels
    calibration_rows = fill.transform(data.frame.iloc[split.calibration]).to_numpy("float64")
    np.testing.assert_array_equal(
        training_spy["isotonic_scores"],
        training_spy["forest"].predict_proba(calibration_rows)[:, 1])
    np.testing.assert_array_equal(training_spy["isotonic_y"],
                                  data.target.to_numpy()[split.calibration])
    assert card["calibration"]["rows"] == len(split.calibration)


def card_splits(card, raw_dir) -> dict:
    """The card's train / calibration / test rows (imputed with its fill values) and labels."""
    data = build_dataset({2021: baac.read_raw(raw_dir)})
    split = split_rows(data.target.to_numpy(), card["split"]["test_size"],
                       card["split"]["calibration_size"], card["split"]["seed"])
    return {name: (data.frame.iloc[positions].fillna(card["imputation"]).to_numpy("float64"),
                   data.target.to_numpy()[positions])
            for name, positions in zip(split._fields, split)}


@pytest.mark.parametrize("backend", ["sklearn", "onnx"])
def test_the_cards_metrics_are_those_of_the_served_probabilities(trained_model_dir,
                                                                 synthetic_raw_dir, backend):
    card = read_card(trained_model_dir)
    rows, y_test = card_splits(card, synthetic_raw_dir)["test"]
    predictor = load_model(trained_model_dir, backend)
    served = evaluate(y_test, predictor.predict_proba(rows))
    before = calibration_figures(y_test, predictor.forest_scores(rows))
    after = calibration_figures(y_test, predictor.predict_proba(rows))
    if backend == "sklearn":  # the very computation training made
        assert served == card["metrics"]
        assert (before, after) == (card["calibration"]["test"]["before"],
                                   card["calibration"]["test"]["after"])
    else:  # the same decisions; probabilities within the float32 forest's rounding
        for key in ("confusion_matrix", "accuracy", "precision", "recall", "f1", "baseline"):
            assert served[key] == card["metrics"][key], key
        for key in ("roc_auc", "brier", "ece"):
            assert served[key] == pytest.approx(card["metrics"][key], abs=1e-6), key
    assert served["confusion_matrix"] == card["metrics"]["confusion_matrix"]
    assert np.sum(served["confusion_matrix"]) == card["rows"]["test"]


def test_the_map_is_sklearns_isotonic_regression_of_the_calibration_rows(trained_model_dir,
                                                                         synthetic_raw_dir):
    card = read_card(trained_model_dir)
    splits = card_splits(card, synthetic_raw_dir)
    predictor = load_model(trained_model_dir, "sklearn")
    regression = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1, increasing=True)
    regression.fit(predictor.forest_scores(splits["calibration"][0]), splits["calibration"][1])
    np.testing.assert_array_equal(predictor.calibration.x_, regression.X_thresholds_)
    np.testing.assert_array_equal(predictor.calibration.y_, regression.y_thresholds_)
    for name in ("test", "train"):  # held-out rows, and rows the map never saw either
        scores = predictor.forest_scores(splits[name][0])
        np.testing.assert_array_equal(predictor.predict_proba(splits[name][0]),
                                      regression.predict(scores))
    assert card["calibration"]["breakpoints"] == len(regression.X_thresholds_)


def test_the_card_records_calibration_before_and_after(trained_model_dir):
    card = read_card(trained_model_dir)
    calibration = card["calibration"]
    assert calibration["method"] == "isotonic"
    assert calibration["bins"] == {"count": 10, "strategy": "equal-width"}
    assert calibration["by_test_year"] == {} == card["metrics_by_test_year"]
    for when in ("before", "after"):
        figures = calibration["test"][when]
        assert set(figures) == {"brier", "ece", "roc_auc", "reliability"}
        bins = figures["reliability"]
        assert len(bins) == 10 and sum(b["rows"] for b in bins) == card["rows"]["test"]
        assert figures["ece"] == pytest.approx(sum(
            b["rows"] * abs(b["mean_predicted"] - b["observed"]) for b in bins if b["rows"]
        ) / card["rows"]["test"])
    for key in ("brier", "ece", "roc_auc"):
        assert calibration["test"]["after"][key] == card["metrics"][key]


def test_calibration_does_not_degrade_the_small_fixture_model(trained_model_dir):
    """3,000 synthetic accidents: a 480-row calibration split, a 600-row test split. The
    forest is nearly calibrated already there, so the map can only keep it within the
    isotonic fit's variance (its blocks are means of few rows)."""
    test = read_card(trained_model_dir)["calibration"]["test"]
    assert test["after"]["ece"] <= test["before"]["ece"] + 0.01
    assert test["after"]["brier"] <= test["before"]["brier"] + 0.01


def test_calibration_repairs_a_miscalibrated_forest(synthetic_raw_dir, tmp_path):
    """Balanced class weights push every score towards severe (40 % of the rows are): the
    map must bring the probabilities back to the observed shares."""
    card = train.train({2021: baac.read_raw(synthetic_raw_dir)}, tmp_path, {"kind": "synthetic"},
                       {**TINY, "class_weight": "balanced"}, log=quiet)
    test = card["calibration"]["test"]
    assert test["before"]["ece"] > 0.06
    assert test["after"]["ece"] < test["before"]["ece"] - 0.03
    assert test["after"]["brier"] < test["before"]["brier"]


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
    before, calibration = card["calibration"]["test"]["before"], card["calibration"]
    assert (f"calibrated (isotonic, {calibration['rows']} rows): ECE {before['ece']:.3f} -> "
            f"{card['metrics']['ece']:.3f}, Brier {before['brier']:.4f} -> "
            f"{card['metrics']['brier']:.4f} (10 equal-width bins)") in out
    assert (
        card["hyperparameters"]["max_depth"] is None
        and card["hyperparameters"]["n_estimators"] == 5
    )


def test_cli_train_synthetic(tmp_path):
    argv = ["train", "--synthetic", "--accidents", "800", "--n-estimators", "5",
            "--out", str(tmp_path)]
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
    assert rows["train"] + rows["calibration"] + rows["test"] == fit_rows
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
    rows = card["rows"]
    assert rows["train"] + rows["calibration"] + rows["test"] == rows["by_year"]["2019"]["rows_out"]


def test_without_test_year_every_year_is_in_the_random_split(every_year_dir, tmp_path):
    assert train_cli(every_year_dir, tmp_path, "--years", "2022,2024") == 0
    card = read_card(tmp_path)
    assert card["metrics_by_test_year"] == {} and card["split"]["fit_years"] == [2022, 2024]
    rows = card["rows"]
    assert rows["train"] + rows["calibration"] + rows["test"] == rows["rows_out"] == sum(
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


def test_with_a_test_year_calibration_rows_come_from_the_fit_years(every_year_dir, tmp_path,
                                                                   monkeypatch):
    parts = []
    real_take = Dataset.take

    def spy_take(self, positions):
        part = real_take(self, positions)
        parts.append(set(part.year.tolist()))
        return part

    monkeypatch.setattr(Dataset, "take", spy_take)
    card = train.train_from_raw(every_year_dir, tmp_path, years=(2021, 2022, 2023, 2024),
                                test_year=2023, hyperparameters=TINY, log=quiet)
    assert parts == [{2021, 2022}] * 3  # train, calibration, test: the fit years only
    calibration = card["calibration"]
    assert list(calibration["by_test_year"]) == list(card["metrics_by_test_year"]) == [
        "2023", "2024"]
    for year, result in card["metrics_by_test_year"].items():
        after = calibration["by_test_year"][year]["after"]
        assert (result["brier"], result["ece"]) == (after["brier"], after["ece"])
        assert sum(b["rows"] for b in after["reliability"]) == result["rows"]
        assert calibration["by_test_year"][year]["before"]["brier"] != after["brier"]


def test_cli_calibration_size(every_year_dir, tmp_path, capsys):
    assert train_cli(every_year_dir, tmp_path, "--years", "2021", "--calibration-size",
                     "0.5") == 0
    card = read_card(tmp_path)
    assert card["split"]["calibration_size"] == 0.5
    assert abs(card["rows"]["train"] - card["rows"]["calibration"]) <= 1
    assert train_cli(every_year_dir, tmp_path / "bad", "--years", "2021",
                     "--calibration-size", "1.5") == 2
    assert "calibration_size 1.5 is not a share strictly between 0 and 1" in (
        capsys.readouterr().err)


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
