"""Soak benchmark (not in CI): load from load/run.py's scheduler for minutes through a worker
kill, a model update and a Prometheus restart; the report must show no lost accepted request.

    python load/soak.py --duration 600 --rate 20 [--json soak.json] [--keep]

It starts its own gunicorn (2 workers, MODEL_PATH a symlink), a local Prometheus (when the
binary is installed) scraping the sidecar exporter, and a `load.background.BackgroundLoad`
sending realistic records (drawn from the card like load/run.py's) to /predict and
/predict/batch. At 25 % of the run one worker is frozen (SIGSTOP), its established API
connections are counted from /proc, and it is SIGKILLed; at 50 % a second model is swapped
in (symlink + SIGHUP); at 75 % Prometheus is stopped and started again.

Every request that did not end in a 200 is a failure (refused and 5xx included). Exit 0 when
the failures are no more than the killed worker's established connections, the model
switched, nothing was dropped by the client and the request counter never went backwards;
1 otherwise. Everything runs on 127.0.0.1 in a temporary directory, removed at the end
(`--keep` keeps it); gunicorn and Prometheus are stopped, then killed, whatever happens.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):               # `python load/soak.py` from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from load.background import BackgroundLoad  # noqa: E402
from load.mix import KindSequence, parse_mix  # noqa: E402
from load.payloads import RequestFactory  # noqa: E402
from load.records import RecordSampler, model_card  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MIX = "valid=0.95,batch=0.05"               # every kind expects 200: any other status fails
EVENTS = ((0.25, "worker_kill"), (0.50, "model_update"), (0.75, "prometheus_restart"))
STOP_TIMEOUT = 60                           # s for a graceful stop before SIGKILL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_models(work: Path, model: str | None) -> tuple[Path, Path]:
    """v1 (the given model, or a small synthetic one) and v2 (other hyperparameters)."""
    from model import train

    v1, v2 = work / "v1", work / "v2"
    if model:
        shutil.copytree(model, v1)
    else:
        train.train_synthetic(v1, n_accidents=5000, hyperparameters={"n_estimators": 40},
                              log=lambda message: None)
    train.train_synthetic(v2, n_accidents=5000, data_seed=7,
                          hyperparameters={"n_estimators": 20, "max_depth": 8},
                          log=lambda message: None)
    (work / "current").symlink_to("v1")
    return v1, v2


def spawn(argv, env, log: Path) -> subprocess.Popen:
    """A child in its own process group (so a stuck one can be killed with its children)."""
    with open(log, "a") as handle:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=handle, stderr=handle,
                                start_new_session=True)


def start_gunicorn(work: Path, port: int, metrics_port: int) -> subprocess.Popen:
    env = {**os.environ, "MODEL_PATH": str(work / "current"), "HOST": "127.0.0.1",
           "PORT": str(port), "METRICS_PORT": str(metrics_port), "WEB_CONCURRENCY": "2",
           "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"), "PYTHONPATH": str(ROOT)}
    return spawn([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                 env, work / "gunicorn.log")


def start_prometheus(work: Path, metrics_port: int, port: int):
    binary = shutil.which("prometheus")
    if binary is None:
        return None
    rules = sorted(str(p) for p in (ROOT / "prometheus" / "rules").glob("*.yml"))
    config = work / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": rules,
        "scrape_configs": [{"job_name": "accident-api",
                            "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}]}))
    process = spawn([binary, f"--config.file={config}",
                     f"--storage.tsdb.path={work / 'prom-data'}",
                     f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                    dict(os.environ), work / "prometheus.log")
    wait_http(f"http://127.0.0.1:{port}/-/ready", 30)
    return process


def stop(process: subprocess.Popen | None, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, then SIGKILL the whole process group if it has not exited in `timeout`."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def requests_counted(metrics_url: str) -> float:
    text = requests.get(metrics_url, timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("http_requests_total{"))


def worker_pids(master: int) -> list:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True,
                         text=True).stdout
    return [int(pid) for pid in out.split()]


def established_connections(pid: int, port: int) -> int:
    """TCP connections in ESTABLISHED state on local `port` whose socket `pid` holds open.

    Reads /proc/<pid>/fd (socket inodes) and /proc/net/tcp{,6}: the listening socket every
    worker shares is in LISTEN state, so only the requests the worker accepted are counted.
    """
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:             # closed between listing and reading
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


def kill_a_worker(master: int, port: int) -> dict:
    """Freeze one worker so it can neither accept nor finish a request, count its accepted
    connections (the requests its death can lose), then SIGKILL it."""
    victim = worker_pids(master)[0]
    os.kill(victim, signal.SIGSTOP)
    connections = established_connections(victim, port)
    os.kill(victim, signal.SIGKILL)
    return {"killed_pid": victim, "established_connections": connections}


def update_model(master: int, work: Path) -> dict:
    staging = work / "current.new"
    staging.symlink_to("v2")
    staging.replace(work / "current")
    os.kill(master, signal.SIGHUP)
    return {"model_path": "v2"}


def restart_prometheus(prometheus, work: Path, metrics_port: int, prom_port: int):
    if prometheus is None:
        return {"skipped": "prometheus not installed"}, None
    stop(prometheus, 30)
    time.sleep(3.0)
    return {"down_s": 3.0}, start_prometheus(work, metrics_port, prom_port)


def request_stream(url: str, seed: int):
    """Realistic requests, as load/run.py builds them (records drawn from the served card)."""
    card = requests.get(url + "/model", params={"include": "reference"}, timeout=10)
    card.raise_for_status()
    factory = RequestFactory(RecordSampler(model_card(card.json()), random.Random(seed)))
    sequence = KindSequence(parse_mix(MIX))
    while True:
        yield factory.build(sequence.next())


def drive(args, work: Path, processes: dict) -> dict:
    """Start everything, run the timetable with its three events, return the raw figures."""
    port, metrics_port, prom_port = free_port(), free_port(), free_port()
    url, metrics_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics"
    print(f"soak: training two models in {work}", flush=True)
    _, v2 = train_models(work, args.model)
    processes["gunicorn"] = server = start_gunicorn(work, port, metrics_port)
    wait_http(url + "/health/ready", 60)
    wait_http(metrics_url, 30)
    processes["prometheus"] = start_prometheus(work, metrics_port, prom_port)
    v1_version = requests.get(url + "/model", timeout=5).json()["version"]
    events, counters, plan = {}, [], list(EVENTS)
    load = BackgroundLoad(url, request_stream(url, args.seed), rate=args.rate, concurrency=64,
                          max_requests=int(args.rate * args.duration) + 1,
                          max_seconds=args.duration)
    t0 = time.monotonic()
    with load:
        next_print = 0.0
        while load.running and (elapsed := time.monotonic() - t0) < args.duration:
            if plan and elapsed >= plan[0][0] * args.duration:
                name = plan.pop(0)[1]
                if name == "worker_kill":
                    done = kill_a_worker(server.pid, port)
                elif name == "model_update":
                    done = update_model(server.pid, work)
                else:
                    done, processes["prometheus"] = restart_prometheus(
                        processes["prometheus"], work, metrics_port, prom_port)
                events[name] = {"at_s": round(elapsed, 1), **done}
                print(f"[{elapsed:6.1f}s] {name}: {events[name]}", flush=True)
            counters.append(requests_counted(metrics_url))
            if elapsed >= next_print:
                print(f"[{elapsed:6.1f}s] {load.summary()}", flush=True)
                next_print += 30.0
            time.sleep(1.0)
    counters.append(requests_counted(metrics_url))
    final_version = requests.get(url + "/model", timeout=5).json()["version"]
    v2_version = json.loads((v2 / "model_card.json").read_text())["version"]
    return {"load": load, "events": events, "counters": counters, "t0": t0,
            "versions": [v1_version, v2_version], "final_model": final_version}


def verdict(args, figures: dict) -> dict:
    """The report: failures (every non-200) against the killed worker's connections."""
    load, events = figures["load"], figures["events"]
    stats, (v1_version, v2_version) = load.stats, figures["versions"]
    failures = sum(n for label, n in stats.by_status.items() if label != "200")
    killed = events.get("worker_kill", {}).get("established_connections", 0)
    counters = figures["counters"]
    report = {
        "duration_s": args.duration, "rate": args.rate, "mix": MIX, "events": events,
        "scheduled": load.result.scheduled, "sent": load.result.sent,
        "dropped": load.result.dropped, "answered": stats.completed,
        "ok_200": stats.by_status.get("200", 0), "by_outcome": dict(stats.by_status),
        "failures": failures,
        "failure_times_s": [(round(t - figures["t0"], 2), label) for t, label in stats.events],
        "killed_worker_established_connections": killed,
        "lost_accepted_requests": max(0, failures - killed),
        "answers_by_model": dict(stats.versions), "versions": [v1_version, v2_version],
        "final_model": figures["final_model"], "counter_samples": len(counters),
        "counter_monotonic": all(b >= a for a, b in zip(counters, counters[1:])),
        "prometheus": "skipped" not in events.get("prometheus_restart", {}),
    }
    report["passed"] = (failures <= killed and report["dropped"] == 0
                        and report["counter_monotonic"]
                        and figures["final_model"] == v2_version
                        and stats.versions[v2_version] > 0)
    return report


def run(args) -> dict:
    """Run the soak; whatever happens, stop the processes and (unless --keep) remove the
    work directory."""
    work = Path(tempfile.mkdtemp(prefix="accident-soak-"))
    processes = {}
    try:
        report = verdict(args, drive(args, work, processes))
    finally:
        stop(processes.get("gunicorn"))
        stop(processes.get("prometheus"), 30)
        if args.keep:
            print(f"soak: work directory kept: {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.keep:
        report["workdir"] = str(work)
    return report


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python load/soak.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=_positive, default=600.0,
                        help="seconds (default 600)")
    parser.add_argument("--rate", type=_positive, default=20.0, help="requests/s (default 20)")
    parser.add_argument("--model", help="model directory for v1 (default: train a small one)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for record values")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, models)")
    args = parser.parse_args(argv)
    report = run(args)
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print("soak: PASS" if report["passed"] else "soak: FAIL")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
