"""`accident-api data ...` and `accident-api train ...`: the model area's subcommands."""

import argparse
import sys

from model import baac_formats, train_defaults

# baac, synth and train (pandas, scikit-learn, skl2onnx) are imported by the handlers that use
# them: `accident-api serve` builds this parser too and must not load them into gunicorn
# (model.baac_formats is plain data).

DEFAULT_YEAR = 2021
SUPPORTED = f"{baac_formats.SUPPORTED_YEARS[0]}-{baac_formats.SUPPORTED_YEARS[-1]}"


def _years(text: str) -> tuple:
    """argparse type of --year/--years: ``2021``, ``2019-2023`` or ``2019,2021`` (2019-2024)."""
    try:
        return baac_formats.parse_years(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _year(text: str) -> int:
    """argparse type of --test-year: one supported year."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not one year (e.g. 2023)")
    return _years(text)[0]


def _add_years(parser, what: str) -> None:
    """--year Y | --years A-B, one option under two spellings: both set ``args.years``."""
    years = parser.add_mutually_exclusive_group()
    years.add_argument(
        "--year", dest="years", type=_years, default=(DEFAULT_YEAR,), metavar="YEAR",
        help=f"BAAC year {what} (default {DEFAULT_YEAR})",
    )
    years.add_argument(
        "--years", dest="years", type=_years, metavar="YEARS",
        help=f"several years {what}: a range (2019-2023) or a list (2019,2021); "
        f"supported: {SUPPORTED}",
    )


def _download(args) -> int:
    from model import baac

    for year in args.years:
        try:
            manifest = baac.download(year=year, dest=args.dest)
        except baac.DownloadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(
            f"{year}: {len(manifest['files'])} files in {args.dest}; sha256 manifest: "
            f"{baac.manifest_path(args.dest, year)}"
        )
    return 0


def _synth(args) -> int:
    from model import synth

    for year in args.years:
        for path in synth.write(args.dest, args.accidents, args.seed, year).values():
            print(path)
    return 0


def add_data_command(subparsers) -> None:
    """Register `data download` and `data synth`."""
    data = subparsers.add_parser(
        "data",
        help="get raw BAAC files (download or synthesise)",
        description="Get raw BAAC accident files: real ones from data.gouv.fr, "
        f"or synthetic ones in the same format (offline). Years: {SUPPORTED}.",
    )
    commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    download = commands.add_parser(
        "download",
        help="download the four BAAC files of a year from data.gouv.fr",
        description="Download caracteristiques, lieux, vehicules and usagers of each year as "
        "<table>-<year>.csv, refusing a file whose published name is not that table and year; "
        "files already present with the recorded size/sha256 are skipped.",
    )
    _add_years(download, "to download")
    download.add_argument("--dest", default="data/raw", help="target directory (default data/raw)")
    download.set_defaults(handler=_download)
    synthesise = commands.add_parser(
        "synth",
        help="write synthetic BAAC files in a year's published format (offline)",
        description="Generate the four raw files of a year in that year's published format "
        "(file names, header, encoding, separator), with severity driven by real risk factors "
        "plus noise.",
    )
    _add_years(synthesise, "whose format to write")
    synthesise.add_argument(
        "--accidents", type=int, default=20000, help="accidents per year (default 20000)"
    )
    synthesise.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    synthesise.add_argument(
        "--dest", default="data/synth", help="target directory (default data/synth)"
    )
    synthesise.set_defaults(handler=_synth)


def _train(args) -> int:
    from model import train

    hyperparameters = {
        "n_estimators": args.n_estimators,
        "max_depth": args.max_depth,
        "min_samples_leaf": args.min_samples_leaf,
        "max_features": args.max_features,
        "class_weight": args.class_weight,
    }
    options = {
        "hyperparameters": hyperparameters, "seed": args.seed, "test_size": args.test_size,
        "calibration_size": args.calibration_size, "years": args.years,
        "test_year": args.test_year,
    }
    try:
        if args.raw_dir:
            card = train.train_from_raw(args.raw_dir, args.out, **options)
        else:
            card = train.train_synthetic(args.out, args.accidents, args.seed, **options)
    except (FileNotFoundError, ValueError, train.ParityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_card(card, args.out)
    return 0


def _print_card(card: dict, out) -> None:
    """The trained model's summary: random-split metrics, each test year's, rows per year."""
    metrics = card["metrics"]
    print(f"model {card['name']} version {card['version']} -> {out}")
    print(f"  random split of {card['split']['fit_years']}:")
    for key in ("roc_auc", "f1", "precision", "recall", "accuracy"):
        print(f"  {key:<9} {metrics[key]:.3f}   (majority baseline {metrics['baseline'][key]:.3f})")
    calibration = card["calibration"]
    before = calibration["test"]["before"]
    print(f"  calibrated ({calibration['method']}, {calibration['rows']} rows): ECE "
          f"{before['ece']:.3f} -> {metrics['ece']:.3f}, Brier {before['brier']:.4f} -> "
          f"{metrics['brier']:.4f} ({calibration['bins']['count']} "
          f"{calibration['bins']['strategy']} bins)")
    for year, result in card["metrics_by_test_year"].items():
        auc = "n/a" if result["roc_auc"] is None else f"{result['roc_auc']:.3f}"
        print(f"  test year {year}: roc_auc {auc}, f1 {result['f1']:.3f}, "
              f"accuracy {result['accuracy']:.3f} ({result['rows']} accidents)")
    for year, rows in card["rows"]["by_year"].items():
        print(f"  {year}: {rows['rows_out']} usable of {rows['accidents_in']} accidents "
              f"({rows['role']})")


def _max_depth(text: str):
    return None if text.lower() == "none" else int(text)


def _max_features(text: str):
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        return None if text.lower() == "none" else text


def add_train_command(subparsers) -> None:
    """Register `train`."""
    defaults = train_defaults.DEFAULT_HYPERPARAMETERS
    parser = subparsers.add_parser(
        "train",
        help="train the RandomForest and write model + ONNX + card",
        description="Build features per year, concatenate, split (stratified, fixed seed), "
        "fit, evaluate against the majority baseline (and on later years with --test-year), "
        "export joblib + ONNX (parity checked) and the model card.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--raw-dir", help="directory with BAAC files (ours <table>-<year>.csv or as published)"
    )
    source.add_argument(
        "--synthetic",
        action="store_true",
        help="train on freshly generated synthetic data (the default without --raw-dir)",
    )
    _add_years(parser, "to train on")
    parser.add_argument(
        "--test-year",
        type=_year,
        help="fit on the years before it only and report metrics on it and each later year "
        "(time-based evaluation); default: none",
    )
    parser.add_argument("--out", default="models", help="output directory (default models)")
    parser.add_argument(
        "--accidents", type=int, default=20000, help="synthetic accidents per year (default 20000)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=train_defaults.SEED,
        help="split/forest/synthetic seed (default 42)",
    )
    parser.add_argument(
        "--test-size",
        type=float,
        default=train_defaults.TEST_SIZE,
        help="held-out share (default 0.2)",
    )
    parser.add_argument(
        "--calibration-size",
        type=float,
        default=train_defaults.CALIBRATION_SIZE,
        help="share of the non-test rows held out from the forest to fit the probability "
        "calibration on (default 0.2)",
    )
    parser.add_argument("--n-estimators", type=int, default=defaults["n_estimators"], help="trees")
    parser.add_argument(
        "--max-depth", type=_max_depth, default=defaults["max_depth"], help="tree depth or none"
    )
    parser.add_argument(
        "--min-samples-leaf", type=int, default=defaults["min_samples_leaf"], help="rows per leaf"
    )
    parser.add_argument(
        "--max-features",
        type=_max_features,
        default=defaults["max_features"],
        help="features per split: sqrt, log2, an int, a float share or none",
    )
    parser.add_argument(
        "--class-weight",
        choices=["balanced", "balanced_subsample"],
        default=defaults["class_weight"],
        help="re-weight classes (default none)",
    )
    parser.set_defaults(handler=_train)
