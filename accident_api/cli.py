"""The `accident-api` command: `data`, `train` and `serve` subcommands."""
import argparse
import os
import sys
from pathlib import Path

from model.cli import add_data_command, add_train_command

# Each `serve` flag overrides the environment variable the service reads.
SERVE_FLAGS = {"model": "MODEL_PATH", "host": "HOST", "port": "PORT",
               "metrics_port": "METRICS_PORT", "workers": "WEB_CONCURRENCY"}
GUNICORN_CONF = "gunicorn.conf.py"


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
    return parser


def main(argv=None) -> int:
    """Run the command line; return the process exit code."""
    args = build_parser().parse_args(argv)
    return args.handler(args) or 0
