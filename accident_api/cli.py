"""The `accident-api` command: `data`, `train` and `serve` subcommands."""
import argparse

from accident_api.serve import add_serve_command
from model.cli import add_data_command, add_train_command


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
