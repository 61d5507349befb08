"""Can load/run.py drive the framework ceiling at capacity? (not in CI)

    python bench/capacity.py [--rate 2000] [--duration 10] [--rounds 3] [--json FILE]

Starts the ceiling app (bench/ceiling_app.py on gunicorn, 2 sync workers: server (d) of
bench/configs.py) on a free 127.0.0.1 port and, each round, sends it the open-model
timetable twice: with `python load/run.py --rate R --duration D` (bench/openload.py, as a
user runs it) and with the same engine in-process on one fixed body (bench/openloop.py),
the order alternating between rounds. It measures achieved rate, p50/p99 from the intended
send times, drops, late sends and the CPU each side spent per request (load/run.py's
includes its start-up), and gives a closed-loop wrk pass of the same server for scale. A
2 s pass at a quarter of the rate warms the server up first and is not counted. On a
machine shared with other work, --wait-idle starts each pass in a quiet moment (the idle
share seen before it is recorded); every pass is kept, whatever happened during it.

Targets: load/run.py achieves >= 95 % of the rate (median over the rounds), and its p99 is
within --p99-agreement ms of the in-process engine's: the median over the rounds of the
difference between the two passes of a round, which ran back to back under the same
neighbours on a shared machine. Raw figures go to bench/results/<date>-<commit>-capacity.json.
"""
import argparse
import os
import resource
import signal
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from statistics import median

if __package__ in (None, ""):  # `python bench/capacity.py`: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import (configs, memory, openload, openloop, payloads, results,  # noqa: E402
                   servers, wrk)


def parse_args(argv=None):
    """Command-line options; the defaults are the acceptance run's."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=2000, help="req/s (default %(default)s)")
    parser.add_argument("--duration", type=float, default=10, help="s per pass")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--p99-agreement", type=float, default=3.0, metavar="MS",
                        help="largest p99 difference that counts as agreeing (default 3 ms)")
    parser.add_argument("--wrk-duration", type=float, default=5, help="0 skips the wrk pass")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="S",
                        help="before each pass, wait up to S s for the CPUs to be >= 90%% "
                             "idle over 3 s (a machine shared with other work); default 0")
    parser.add_argument("--json", type=Path,
                        help="default: bench/results/<date>-<commit>-capacity.json")
    return parser.parse_args(argv)


def cli_pass(server, options, work_dir, tag):
    """load/run.py in a subprocess, with the CPU it used per request."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = openload.run(server.url, options.rate, options.duration,
                           openload.records_file(work_dir), work_dir / f"cli-{tag}.json",
                           work_dir / f"cli-{tag}.log")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return figures, cpu


def engine_pass(server, options):
    """The engine in this process on one fixed body, with the CPU it used per request."""
    before = time.process_time()
    figures = openloop.run(server.port, "/predict", payloads.record_body(), options.rate,
                           options.duration)
    return figures, time.process_time() - before


def idle_share(seconds):
    """Share of the machine's CPU time that was idle over the next `seconds` (/proc/stat)."""
    def sample():
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)      # idle + iowait, total
    idle_before, total_before = sample()
    time.sleep(seconds)
    idle_after, total_after = sample()
    return (idle_after - idle_before) / max(1, total_after - total_before)


def wait_for_idle(limit):
    """Wait up to `limit` s until the CPUs were >= 90 % idle over 3 s; the last share seen."""
    deadline = time.monotonic() + limit
    share = idle_share(3.0)
    while share < 0.9 and time.monotonic() < deadline:
        share = idle_share(3.0)
    return round(share, 3)


def measured(name, server, run_pass, wait_idle=0.0):
    """Run one pass; add the server's and the client's CPU ms per request, and the load."""
    idle_before = wait_for_idle(wait_idle) if wait_idle else None
    load_before = os.getloadavg()[0]
    server_cpu = memory.tree_cpu_seconds(server.process.pid)
    figures, client_cpu = run_pass()
    server_cpu = memory.tree_cpu_seconds(server.process.pid) - server_cpu
    sent = figures["sent"]
    figures.update({
        "client": name,
        "client_cpu_ms_per_request": round(1000 * client_cpu / sent, 3) if sent else None,
        "server_cpu_ms_per_request": round(1000 * server_cpu / sent, 3) if sent else None,
        "idle_share_before": idle_before, "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0]})
    print(f"    {name:<18} {figures['rps']:8.1f} of {figures['target_rate']:g} req/s  "
          f"p50 {figures['p50_ms']:.2f} ms  p99 {figures['p99_ms']:.2f} ms  dropped "
          f"{figures['dropped']}  late {figures['late']}  CPU ms/req: client "
          f"{figures['client_cpu_ms_per_request']}, server "
          f"{figures['server_cpu_ms_per_request']}", flush=True)
    return figures


def run_rounds(options, server, work_dir):
    """Every round: both open-model passes (order alternating), then wrk for scale."""
    script = wrk.write_script(work_dir, "record", payloads.record_body())
    openloop.run(server.port, "/predict", payloads.record_body(), options.rate / 4, 2.0)
    rounds = []
    for number in range(options.rounds):
        print(f"round {number + 1}/{options.rounds}", flush=True)
        passes = [("load_run_py", "load/run.py",
                   lambda: cli_pass(server, options, work_dir, number)),
                  ("engine_in_process", "engine in-process",
                   lambda: engine_pass(server, options))]
        if number % 2:
            passes.reverse()
        result = {key: measured(name, server, run_pass, options.wait_idle)
                  for key, name, run_pass in passes}
        if options.wrk_duration and wrk.wrk_path():
            result["wrk"] = wrk.finish(wrk.start(server.url + "/predict", script,
                                                 options.wrk_duration), options.wrk_duration)
            print(f"    wrk, closed loop   {result['wrk']['rps']:8.1f} req/s (8 connections)",
                  flush=True)
        rounds.append(result)
    return rounds


def verdicts(rounds, options):
    """Medians over the rounds and the two targets."""
    def mid(client, field):
        values = [r[client][field] for r in rounds if r[client].get(field) is not None]
        return median(values) if values else None
    medians = {client: {field: mid(client, field) for field in
                        ("rps", "p50_ms", "p99_ms", "dropped", "late", "errors",
                         "client_cpu_ms_per_request", "server_cpu_ms_per_request")}
               for client in ("load_run_py", "engine_in_process")}
    share = medians["load_run_py"]["rps"] / options.rate
    # paired: the two passes of a round ran back to back, under the same neighbours
    gap = abs(median(r["load_run_py"]["p99_ms"] - r["engine_in_process"]["p99_ms"]
                     for r in rounds))
    return medians, [
        {"target": f"load/run.py achieves >= 95% of {options.rate:g} req/s",
         "value": round(share, 4), "status": "PASS" if share >= 0.95 else "FAIL"},
        {"target": f"p99 of load/run.py within {options.p99_agreement:g} ms of the "
                   f"in-process engine's (median of the rounds' differences)",
         "value": round(gap, 3),
         "status": "PASS" if gap <= options.p99_agreement else "FAIL"},
    ]


def main(argv=None):
    """Run the rounds, print the medians and verdicts, write the JSON; exit 0 (a measurement)."""
    options = parse_args(argv)
    started = datetime.now(timezone.utc)
    commit = results.checkout_commit(servers.REPO)
    work_dir = Path(tempfile.mkdtemp(prefix="accident-api-capacity-"))
    ceiling = configs.by_keys("d")[0]
    port = servers.free_port()
    argv_, env = configs.command(ceiling, servers.python(), port, None, work_dir)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    load_at_start = os.getloadavg()
    server = servers.start("ceiling", argv_, env, work_dir, port)
    try:
        rounds = run_rounds(options, server, work_dir)
    except KeyboardInterrupt:
        print("interrupted: server stopped", file=sys.stderr)
        return 130
    finally:
        servers.stop(server)
    medians, targets = verdicts(rounds, options)
    for target in targets:
        print(f"{target['status']:>4}  {target['value']:>8}  {target['target']}")
    path = results.save_run(started, commit, options, {
        "load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg(),
        "rounds": rounds, "medians": medians, "targets": targets}, "capacity")
    print(f"raw figures: {path}\nlogs: {work_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
