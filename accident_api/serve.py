"""`accident-api serve`: the service under gunicorn; flags override the environment."""
import argparse
import dataclasses
import sys

from accident_api.config import Config, ConfigError


def add_serve_command(subparsers) -> None:
    """Register `serve` and its handler."""
    parser = subparsers.add_parser(
        "serve", help="serve the API with gunicorn (metrics on their own port)",
        description="Serve the prediction API with gunicorn. Each flag overrides its "
                    "environment variable (MODEL_PATH, HOST, PORT, METRICS_PORT, WEB_CONCURRENCY).")
    parser.add_argument("--model", metavar="PATH", help="model directory (default: models)")
    parser.add_argument("--host", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="API port (default: 8000)")
    parser.add_argument("--metrics-port", type=int, help="metrics exporter port (default: 9200)")
    parser.add_argument("--workers", type=int, help="gunicorn sync workers (default: 2)")
    parser.set_defaults(handler=serve)


def resolve_config(args: argparse.Namespace, environ=None) -> Config:
    """The environment's Config with every given flag applied on top."""
    overrides = {"MODEL_PATH": args.model, "HOST": args.host, "PORT": args.port,
                 "METRICS_PORT": args.metrics_port, "WEB_CONCURRENCY": args.workers}
    config = Config.from_env(environ)
    return dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})


def serve(args: argparse.Namespace) -> int:
    """Run gunicorn in this process until it stops; return its exit status."""
    try:
        config = resolve_config(args)
    except ConfigError as error:
        print(f"accident-api cannot start: {error}", file=sys.stderr)
        return 1
    if args.workers is not None and args.workers < 1:
        print("accident-api cannot start: --workers must be >= 1", file=sys.stderr)
        return 1
    from monitoring.exporter import prepare_multiproc_dir

    temporary = config.PROMETHEUS_MULTIPROC_DIR is None
    config = dataclasses.replace(
        config, PROMETHEUS_MULTIPROC_DIR=prepare_multiproc_dir(config.PROMETHEUS_MULTIPROC_DIR))
    # imported only now: gunicorn's application module must not pull prometheus_client in early
    from accident_api.gunicorn_app import ServiceApplication

    try:
        ServiceApplication(config, temporary_metrics_dir=temporary).run()
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
    return 0
