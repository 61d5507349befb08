"""The `accident-api` command: `data`, `train`, `serve`, `predictions` and `report` subcommands."""
import argparse
import os
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from model.cli import add_data_command, add_train_command

# Each `serve` flag overrides the environment variable the service reads.
SERVE_FLAGS = {"model": "MODEL_PATH", "host": "HOST", "port": "PORT",
               "metrics_port": "METRICS_PORT", "workers": "WEB_CONCURRENCY"}
GUNICORN_CONF = "gunicorn.conf.py"
STDOUT = Path("-")  # `report --out -` / `--json -`


def add_serve_command(subparsers) -> None:
    """Register `serve` and its handler."""
    parser = subparsers.add_parser(
        "serve", help="serve the API with gunicorn (metrics on their own port)",
        description="Serve the prediction API with gunicorn and gunicorn.conf.py. Each flag "
                    "overrides its environment variable (MODEL_PATH, HOST, PORT, "
                    "METRICS_PORT, WEB_CONCURRENCY).")
    parser.add_argument("--model", metavar="PATH", help="model directory (default: models)")
    parser.add_argument("--host", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="API port (default: 8000)")
    parser.add_argument("--metrics-port", type=int, help="metrics exporter port (default: 9200)")
    parser.add_argument("--workers", type=int, help="gunicorn sync workers (default: 2)")
    parser.set_defaults(handler=serve)


def serve_environment(args: argparse.Namespace, environ) -> dict:
    """`environ` with every given flag applied on top."""
    flags = {SERVE_FLAGS[name]: str(value) for name, value in vars(args).items()
             if name in SERVE_FLAGS and value is not None}
    return {**environ, **flags}


def gunicorn_conf() -> Path | None:
    """gunicorn.conf.py of this checkout (beside the package), or of the current directory."""
    for directory in (Path(__file__).resolve().parent.parent, Path.cwd()):
        if (directory / GUNICORN_CONF).is_file():
            return directory / GUNICORN_CONF
    return None


def serve(args: argparse.Namespace) -> int:
    """Become `gunicorn -c gunicorn.conf.py wsgi:app` with the flags' environment."""
    conf = gunicorn_conf()
    if conf is None:
        print(f"accident-api cannot start: no {GUNICORN_CONF} beside the package or in "
              f"{Path.cwd()}: run from the project directory", file=sys.stderr)
        return 1
    argv = [sys.executable, "-m", "gunicorn", "--chdir", str(conf.parent), "-c", str(conf),
            "wsgi:app"]
    os.execve(sys.executable, argv, serve_environment(args, os.environ))


DURATION = re.compile(r"^(\d+)([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def moment(text: str) -> datetime:
    """A UTC time from `7d`, `12h`, `30m`, `2w` (that long ago) or an ISO 8601 date/time."""
    match = DURATION.match(text.strip())
    if match:
        ago = timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
        return datetime.now(timezone.utc).replace(tzinfo=None) - ago
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a duration (7d, 12h, 30m, 2w) nor an ISO 8601 time") from None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when


def add_predictions_command(subparsers) -> None:
    """Register `predictions export`."""
    parser = subparsers.add_parser(
        "predictions", help="the prediction log: export it for offline analysis",
        description="Read the prediction log the service writes (PREDICTION_LOG_URL, or the "
                    "SQLite file in DATA_DIR).")
    actions = parser.add_subparsers(dest="predictions_command", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export", help="write the predictions of a time window, with their labels",
        description="Write the predictions served in a window, each with its label when one "
                    "arrived (columns actual, observed_at, received_at), as CSV or Parquet.")
    export.add_argument("--since", type=moment, required=True,
                        help="start: a duration ago (7d, 12h, 30m, 2w) or an ISO 8601 time")
    export.add_argument("--until", type=moment, help="end (default: now)")
    export.add_argument("--labelled", action="store_true", help="only predictions with a label")
    export.add_argument("--model-version", help="only predictions of this model version")
    export.add_argument("--format", choices=("csv", "parquet"), default="csv")
    export.add_argument("--out", type=Path, required=True, help="file to write")
    export.set_defaults(handler=export_predictions)


class LogUnreadable(Exception):
    """The configuration or the prediction log cannot be read; the message says which."""


def service_config():
    """The service's Config, from the environment (LogUnreadable when it is invalid)."""
    from accident_api.config import Config, ConfigError

    try:
        return Config.from_env()
    except ConfigError as error:
        raise LogUnreadable(str(error)) from None


def read_prediction_log(config, since, until, labelled_only=False, model_version=None):
    """The window of the prediction log the service with ``config`` writes, as a DataFrame.

    Raises LogUnreadable when the database refuses the query.
    """
    import sqlalchemy as sa

    from accident_api.service import prediction_log_url
    from monitoring.prediction_log import PredictionLog

    url = prediction_log_url(config.PREDICTION_LOG_URL, config.DATA_DIR)
    try:
        return PredictionLog(url).read(since, until, labelled_only=labelled_only,
                                       model_version=model_version)
    except sa.exc.SQLAlchemyError as exc:
        where = sa.make_url(url).render_as_string(hide_password=True)
        raise LogUnreadable(f"cannot read the prediction log at {where} "
                            f"({str(exc).splitlines()[0]})") from None


def export_predictions(args: argparse.Namespace) -> int:
    """Write the selected predictions to `--out`; print how many."""
    try:
        frame = read_prediction_log(service_config(), args.since, args.until,
                                    labelled_only=args.labelled, model_version=args.model_version)
    except LogUnreadable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "csv":
        frame.to_csv(args.out, index=False)
    else:
        frame.to_parquet(args.out, index=False)
    labelled = int(frame["actual"].notna().sum())
    print(f"{len(frame)} prediction(s), {labelled} labelled -> {args.out}")
    return 0


def add_report_command(subparsers) -> None:
    """Register `report`."""
    parser = subparsers.add_parser(
        "report", help="an offline HTML report of a window of predictions (Evidently)",
        description="Compare the predictions served in a window (the prediction log the "
                    "service writes: PREDICTION_LOG_URL, or the SQLite file in DATA_DIR) with "
                    "the model's reference dataset: data drift of every feature, prediction "
                    "drift and, on the labelled predictions, classification quality beside "
                    "the reference's. Needs the `report` extra (Evidently).")
    parser.add_argument("--since", type=moment, required=True,
                        help="start: a duration ago (7d, 12h, 30m, 2w) or an ISO 8601 time")
    parser.add_argument("--until", type=moment, help="end (default: now)")
    parser.add_argument("--model-version", help="only predictions of this model version "
                        "(required when the window holds several)")
    parser.add_argument("--model", metavar="PATH", help="directory of the model that served "
                        "them, with its reference dataset (default: MODEL_PATH, else models)")
    parser.add_argument("--out", type=Path, required=True,
                        help="HTML file to write (- for standard output)")
    parser.add_argument("--json", type=Path,
                        help="also write the results as JSON here (- for standard output)")
    parser.add_argument("--min-labelled", type=int, default=100, metavar="N",
                        help="labelled predictions needed for classification quality "
                             "(default 100; drift is reported with fewer)")
    parser.set_defaults(handler=report)


def report(args: argparse.Namespace) -> int:
    """Write the report of the window; 1 when it holds no prediction, 2 when refused."""
    if args.out == STDOUT and args.json == STDOUT:
        print("error: --out and --json cannot both be - (standard output)", file=sys.stderr)
        return 2
    from model.card import read_card
    from model.errors import ModelError
    from model.reference_data import read_reference
    from model.report import window as report_window

    model_dir = args.model
    try:
        config = service_config()
        model_dir = args.model or config.MODEL_PATH
        frame = read_prediction_log(config, args.since, args.until,
                                    model_version=args.model_version)
        version = report_window.model_version_of(frame, args.model_version)
        card = read_card(model_dir)
        report_window.check_reference(card, version, model_dir)
        reference = read_reference(model_dir, card)
    except report_window.NoPredictionsError as error:
        until = args.until.isoformat(timespec="seconds") if args.until else "now"
        print(f"error: {error} (from {args.since.isoformat(timespec='seconds')} to {until} "
              "UTC): nothing to report", file=sys.stderr)
        return 1
    except (LogUnreadable, report_window.ReportRefused, ModelError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        from model.report.build import build
    except ImportError as exc:
        print(f"error: the report needs Evidently, the optional `report` extra: pip install -c "
              f"constraints.txt -e '.[report]' ({exc})", file=sys.stderr)
        return 2
    window = report_window.prepare(frame, card, version)
    built = build(window, reference, card, args.since, args.until, args.min_labelled)
    _write_report(built, args)
    return 0


def _emit(path: Path, text: str) -> None:
    """Write ``text`` to the file at ``path``, or to standard output when it is ``-``."""
    if path == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _write_report(built, args: argparse.Namespace) -> None:
    """Write the page (and the JSON); say what they hold (on stderr if one went to stdout)."""
    import json

    results = built.results
    _emit(args.out, built.html())
    if args.json:
        _emit(args.json, json.dumps(results, indent=2, allow_nan=False) + "\n")
    drift, quality, window = results["data_drift"], results["quality"], results["window"]
    for section in (drift, quality):
        if not section["computed"]:
            print(f"warning: {section['reason']}", file=sys.stderr)
    drifted = (f"{drift['drifted_count']} of {drift['features']} features drifted"
               f"{' (' + ', '.join(drift['drifted']) + ')' if drift['drifted'] else ''}"
               if drift["computed"] else "no data drift (no features logged)")
    accuracy = (f"; accuracy {quality['current']['accuracy']:.3f} on the labelled rows "
                f"(reference {quality['reference']['accuracy']:.3f})" if quality["computed"]
                else "")
    written = " and ".join("standard output" if path == STDOUT else str(path)
                           for path in (args.out, args.json) if path)
    print(f"{window['rows']} prediction(s) of model {window['model_version']}, "
          f"{window['labelled_rows']} labelled: {drifted}{accuracy} -> {written}",
          file=sys.stderr if STDOUT in (args.out, args.json) else sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser; each subcommand registers itself and its handler."""
    parser = argparse.ArgumentParser(
        prog="accident-api",
        description="Monitored road-accident severity prediction service (BAAC open data).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_data_command(commands)
    add_train_command(commands)
    add_serve_command(commands)
    add_predictions_command(commands)
    add_report_command(commands)
    return parser


def main(argv=None) -> int:
    """Run the command line; return the process exit code."""
    args = build_parser().parse_args(argv)
    return args.handler(args) or 0
