"""Benchmark the service against the seed-style reference and the framework ceiling.

    python bench/run.py [--model DIR] [--rounds 3] [--json FILE]

In one run on one machine it starts each server in turn on a free 127.0.0.1 port (a-f, see
bench/configs.py), rotating the order every round, and measures: closed-loop throughput
with wrk (8 connections), an open-model pass with load/run.py at a fixed rate, a
1,000-record batch pass, and server memory under load. It prints medians over the rounds,
ratios to the seed (a) and the ceiling (d), and PASS/FAIL for each performance target.
Every raw figure goes to bench/results/<date>-<commit>.json (bench/results.py; --json
elsewhere).
Without --model it trains one with the project's own CLI on synthetic data (cached in
--work-dir). Every server is stopped on exit, error or Ctrl-C.
"""
import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # `python bench/run.py`: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (configs, openload, passes, payloads, report, results,  # noqa: E402
                   servers, summary, wrk)
from model.card import read_card  # noqa: E402
from model.errors import ModelError  # noqa: E402
from model.train_defaults import DEFAULT_HYPERPARAMETERS, SEED, TEST_SIZE  # noqa: E402


def add_model_arguments(parser):
    """--model, --train-args and --work-dir: the options `ensure_model` reads."""
    parser.add_argument("--model", type=Path, help="model directory (default: train one)")
    parser.add_argument("--train-args", default="--synthetic --accidents 50000",
                        help="`accident-api train` arguments when training (default: %(default)s)")
    parser.add_argument("--work-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "accident-api-bench",
                        help="logs, scripts and the trained model (default: %(default)s)")


def parse_args(argv=None):
    """Command-line options; defaults are the README's figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--servers", default="abcdef", help="which of a-f to run (default: all)")
    parser.add_argument("--access-log", action="store_true",
                        help="ACCESS_LOG=1 for our service and the ceiling alike (default: off, "
                             "gunicorn's default)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10, help="wrk pass seconds")
    parser.add_argument("--warmup", type=float, default=2, help="discarded wrk seconds first")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--rate", type=float, default=1000, help="open-model req/s")
    parser.add_argument("--seed-rate", type=float, default=20,
                        help="open-model req/s for the seed-style reference (default: %(default)s)")
    parser.add_argument("--open-duration", type=float, default=10, help="0 skips the pass")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-duration", type=float, default=5, help="0 skips the pass")
    parser.add_argument("--batch-connections", type=int, default=2)
    parser.add_argument("--json", type=Path,
                        help="write every raw figure here (default: "
                             "bench/results/<date>-<commit>.json)")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    return parser.parse_args(argv)


def cached_model_dir(work_dir, train_args):
    """Where a model trained with `train_args` and today's training defaults is cached.

    The name hashes both, so a change of the default hyper-parameters trains a new model
    instead of silently benchmarking the old one.
    """
    recipe = json.dumps({"train_args": train_args.split(), "defaults": DEFAULT_HYPERPARAMETERS,
                         "seed": SEED, "test_size": TEST_SIZE}, sort_keys=True)
    return work_dir / f"model-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def ensure_model(options):
    """The model directory to serve: --model, or one trained by our CLI into the work dir."""
    if options.model:
        return options.model.resolve()
    model_dir = cached_model_dir(options.work_dir, options.train_args)
    try:
        read_card(model_dir)
        return model_dir
    except ModelError as exc:  # none yet, or one an older training code wrote
        print(f">>> training a benchmark model into {model_dir} "
              f"(accident-api train {options.train_args}): {exc}", flush=True)
        subprocess.run([servers.python(), "-m", "accident_api", "train",
                        *options.train_args.split(), "--out", str(model_dir)],
                       cwd=servers.REPO, check=True)
    return model_dir


def prepare_scripts(options, work_dir):
    """The wrk Lua scripts (single record, batch) and load/run.py's records file."""
    return {
        "record": wrk.write_script(work_dir, "record", payloads.record_body()),
        "batch": wrk.write_script(work_dir, "batch", payloads.batch_body(options.batch_size)),
        "records_file": openload.records_file(work_dir),
    }


def run_rounds(options, model_dir, run_dir, running):
    """All rounds; each round starts every server in turn, rotated one place per round."""
    chosen = configs.by_keys(options.servers)
    scripts = prepare_scripts(options, run_dir)
    rounds = []
    for number in range(options.rounds):
        order = chosen[number % len(chosen):] + chosen[:number % len(chosen)]
        results = {}
        for config in order:
            port = servers.free_port()
            argv, env = configs.command(config, servers.python(), port, model_dir, run_dir)
            print(f"round {number + 1}/{options.rounds}: ({config.key}) {config.label}",
                  flush=True)
            server = running.start(f"{config.key}-round{number + 1}", argv, env, run_dir, port)
            try:
                results[config.key] = passes.measure(config, server, options, scripts, run_dir)
            finally:
                running.stop(server)
            print("   ", _brief(results[config.key]), flush=True)
        rounds.append(results)
    return rounds


def _brief(result):
    """A one-line progress summary of one server's round."""
    parts = [f"wrk {result['wrk']['rps']:,.0f} req/s p99 {result['wrk']['p99_ms']} ms"]
    if result.get("open"):
        parts.append(f"open {result['open']['rps'] or 0:,.0f} req/s p99 "
                     f"{result['open']['p99_ms'] or 0:.2f} ms")
    if result.get("batch"):
        parts.append(f"batch {result['batch']['rows_per_s']:,.0f} rows/s")
    parts.append(f"PSS {result['memory']['pss_mb']:.0f} MB")
    return " | ".join(parts)


def main(argv=None):
    """Run the benchmark; the exit code is 0 even when targets fail (it is a measurement)."""
    options = parse_args(argv)
    if not wrk.wrk_path():
        sys.exit("wrk not found: `apt-get install wrk` (or `make system-deps`)")
    # the servers inherit it: our service and the ceiling log exactly alike
    os.environ["ACCESS_LOG"] = "1" if options.access_log else "0"
    options.work_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=options.work_dir))
    running = servers.ServerSet()
    # SIGTERM takes the Ctrl-C path so the finally below stops every server.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.time()
    commit = results.checkout_commit(servers.REPO)
    try:
        model_dir = ensure_model(options)
        if not openload.available():
            print("load/run.py not in this checkout: open-model pass skipped", flush=True)
        rounds = run_rounds(options, model_dir, run_dir, running)
    except KeyboardInterrupt:
        print("interrupted: servers stopped", file=sys.stderr)
        return 130
    finally:
        running.stop_all()
    medians = summary.summarise(rounds)
    verdicts = summary.targets(medians, options.rate)
    print(f"\nmedians of {options.rounds} round(s); machine: {results.machine()}")
    print(report.text(medians))
    if options.markdown:
        print("\n" + report.markdown(medians))
    print("\ntargets, judged on (c):")
    print("\n".join(report.target_lines(verdicts)))
    cpu = summary.cpu_view(medians)
    print("\nthe same throughput targets from CPU ms per request (less sensitive to neighbours):")
    print("\n".join(report.target_lines(cpu)))
    start = datetime.fromtimestamp(started, timezone.utc)
    path = results.save_run(start, commit, options, {
        "model": str(model_dir), "seconds": round(time.time() - started, 1),
        "rounds": rounds, "medians": medians, "targets": verdicts, "cpu_view": cpu,
        "load_average": os.getloadavg()})
    print(f"\nraw figures: {path}")
    print(f"logs: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
