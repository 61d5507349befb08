"""V2 inference of 1,000-row requests through our service: JSON tensors vs binary tensor data.

    python bench/v2_binary.py [--model DIR] [--rows 1000] [--requests 300] [--connections 2]

Starts our service as bench/configs.py's (c) (ONNX backend, 2 gunicorn workers, monitoring on)
on a free 127.0.0.1 port, then for each encoding posts one prepared body `--requests` times
from `--connections` keep-alive clients, after a short warm-up: JSON (an FP64 [N, 28] tensor
as JSON, outputs as JSON) and binary (the same tensor as binary tensor data, outputs asked for
in binary). The two run interleaved in `--rounds` rounds and the median round is reported:
rows/s, median request latency, request and response bytes, and the load average (other work
on a shared machine moves the figures). Raw figures go to
bench/results/<date>-<commit>-v2-binary.json. Not run in CI.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import requests

if __package__ in (None, ""):  # `python bench/v2_binary.py`: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import configs, payloads, results, servers  # noqa: E402
from bench.run import add_model_arguments, ensure_model  # noqa: E402

PATH = "/v2/models/accident-severity-rf/infer"
HEADER_LENGTH = "Inference-Header-Content-Length"


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_arguments(parser)
    parser.add_argument("--rows", type=int, default=1000, help="rows per request")
    parser.add_argument("--requests", type=int, default=300, help="requests per pass")
    parser.add_argument("--connections", type=int, default=2, help="concurrent clients")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path,
                        help="default: bench/results/<date>-<commit>-v2-binary.json")
    return parser.parse_args(argv)


def encodings(rows):
    """{encoding: (body, headers)} of the same `rows`-row request."""
    binary, header_length = payloads.v2_binary_body(rows)
    return {"json": (payloads.v2_json_body(rows).encode(),
                     {"Content-Type": "application/json"}),
            "binary": (binary, {"Content-Type": "application/octet-stream",
                                HEADER_LENGTH: str(header_length)})}


def one_pass(url, body, headers, count, connections):
    """Post `body` `count` times from `connections` clients: (seconds, latencies, response size)."""
    sessions = [requests.Session() for _ in range(connections)]

    def post(index):
        started = time.perf_counter()
        response = sessions[index % connections].post(url, data=body, headers=headers,
                                                      timeout=60)
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
        return time.perf_counter() - started, len(response.content)

    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(post, range(2 * connections)))  # warm-up: connections, caches
        started = time.perf_counter()
        results = list(pool.map(post, range(count)))
        seconds = time.perf_counter() - started
    for session in sessions:
        session.close()
    return seconds, [latency for latency, _ in results], results[0][1]


def measure(server, options):
    """Rounds of both encodings, interleaved: ({encoding: median round}, {encoding: rounds})."""
    bodies = encodings(options.rows)
    runs = {name: [] for name in bodies}
    for _ in range(options.rounds):
        for name, (body, headers) in bodies.items():
            seconds, latencies, response_bytes = one_pass(
                server.url + PATH, body, headers, options.requests, options.connections)
            runs[name].append({"rows_per_s": options.requests * options.rows / seconds,
                               "p50_ms": 1000 * statistics.median(latencies),
                               "request_bytes": len(body), "response_bytes": response_bytes})
    medians = {name: sorted(rounds, key=lambda r: r["rows_per_s"])[len(rounds) // 2]
               for name, rounds in runs.items()}
    return medians, runs


def main(argv=None):
    """Start the service, measure both encodings, print and write the figures; 0 unless a
    request fails."""
    options = parse_args(argv)
    started = datetime.now(timezone.utc)
    commit = results.checkout_commit(servers.REPO)
    options.work_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="v2-binary-", dir=options.work_dir))
    model_dir = ensure_model(options)
    config = next(c for c in configs.CONFIGS if c.key == "c")
    port = servers.free_port()
    argv, env = configs.command(config, servers.python(), port, model_dir, run_dir)
    before = os.getloadavg()
    server = servers.start("v2-binary", argv, env, run_dir, port)
    try:
        figures, rounds = measure(server, options)
    finally:
        servers.stop(server)
    print(f"{options.rows}-row V2 requests, {options.requests} per pass, {options.connections} "
          f"connections, median of {options.rounds} rounds; server: ({config.key}) "
          f"{config.label}")
    for name, result in figures.items():
        print(f"  {name:7s} {result['rows_per_s']:>9,.0f} rows/s   p50 {result['p50_ms']:6.1f} ms"
              f"   request {result['request_bytes']:>7,} B   response "
              f"{result['response_bytes']:>6,} B")
    ratio = figures["binary"]["rows_per_s"] / figures["json"]["rows_per_s"]
    print(f"  binary / json: {ratio:.2f}x rows/s")
    after = os.getloadavg()
    print(f"load average (1, 5, 15 min) before: {before}, after: {after}")
    path = results.save_run(started, commit, options, {
        "load_average_at_start": before, "load_average_at_end": after,
        "rounds": rounds, "medians": figures, "binary_over_json": ratio}, "v2-binary")
    print(f"raw figures: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
