"""`accident-api data ...` and `accident-api train ...`: the model area's subcommands."""

import sys

from model import train_defaults

# baac, synth and train (pandas, scikit-learn, skl2onnx) are imported by the handlers that use
# them: `accident-api serve` builds this parser too and must not load them into gunicorn.


def _download(args) -> int:
    from model import baac

    try:
        manifest = baac.download(year=args.year, dest=args.dest)
    except baac.DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{len(manifest['files'])} files in {args.dest}; sha256 manifest: "
        f"{baac.manifest_path(args.dest, args.year)}"
    )
    return 0


def _synth(args) -> int:
    from model import synth

    paths = synth.write(args.dest, args.accidents, args.seed)
    for path in paths.values():
        print(path)
    return 0


def add_data_command(subparsers) -> None:
    """Register `data download` and `data synth`."""
    data = subparsers.add_parser(
        "data",
        help="get raw BAAC files (download or synthesise)",
        description="Get raw BAAC accident files: real ones from data.gouv.fr, "
        "or synthetic ones in the same format (offline).",
    )
    commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    download = commands.add_parser(
        "download",
        help="download the four BAAC files of a year from data.gouv.fr",
        description="Download caracteristiques, lieux, vehicules and usagers; "
        "files already present with the recorded size/sha256 are skipped.",
    )
    download.add_argument("--year", type=int, default=2021, help="BAAC year (default 2021)")
    download.add_argument("--dest", default="data/raw", help="target directory (default data/raw)")
    download.set_defaults(handler=_download)
    synthesise = commands.add_parser(
        "synth",
        help="write synthetic BAAC-2021-format files (offline)",
        description="Generate the four raw files in the exact BAAC 2021 format, "
        "with severity driven by real risk factors plus noise.",
    )
    synthesise.add_argument(
        "--accidents", type=int, default=20000, help="number of accidents (default 20000)"
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
    options = {"hyperparameters": hyperparameters, "seed": args.seed, "test_size": args.test_size}
    try:
        if args.raw_dir:
            card = train.train_from_raw(args.raw_dir, args.out, year=args.year, **options)
        else:
            card = train.train_synthetic(args.out, args.accidents, args.seed, **options)
    except (FileNotFoundError, ValueError, train.ParityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    metrics = card["metrics"]
    print(f"model {card['name']} version {card['version']} -> {args.out}")
    for key in ("roc_auc", "f1", "precision", "recall", "accuracy"):
        print(f"  {key:<9} {metrics[key]:.3f}   (majority baseline {metrics['baseline'][key]:.3f})")
    return 0


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
        description="Build features, split (stratified, fixed seed), fit, evaluate "
        "against the majority baseline, export joblib + ONNX (parity "
        "checked) and the model card.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--raw-dir", help="directory with real BAAC files (<table>-<year>.csv)")
    source.add_argument(
        "--synthetic",
        action="store_true",
        help="train on freshly generated synthetic data (the default without --raw-dir)",
    )
    parser.add_argument(
        "--year", type=int, default=2021, help="BAAC year of --raw-dir files (default 2021)"
    )
    parser.add_argument("--out", default="models", help="output directory (default models)")
    parser.add_argument(
        "--accidents", type=int, default=20000, help="synthetic accidents (default 20000)"
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
