"""Soak benchmark (not in CI): steady load for minutes through a worker kill, a model update
and a Prometheus restart; the report must show no lost accepted request.

    python load/soak.py --duration 600 --rate 20 [--json soak.json]

It starts its own gunicorn (2 workers, MODEL_PATH a symlink), a local Prometheus (when the
binary is installed) scraping the sidecar exporter, and a `load.steady.SteadyLoad`. At 25 % of
the run one worker is SIGKILLed, at 50 % a second model is swapped in (symlink + SIGHUP), at
75 % Prometheus is stopped and started again. Every failure is timed; a failure within
KILL_WINDOW seconds of the kill counts as the killed worker's in-flight request (a sync
worker holds at most one), anything else is a lost accepted request. Exit 0 when none was
lost, the killed worker lost at most one, the model switched and the request counter never
went backwards; 1 otherwise. Everything runs on 127.0.0.1 in a temporary directory.
"""
from __future__ import annotations

import argparse
import json
import os
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

from load.steady import REFUSED, SteadyLoad  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KILL_WINDOW = 3.0
SEED = {"place": 10, "catu": 3, "sexe": 1, "secu1": 0.0, "year_acc": 2021, "victim_age": 60,
        "catv": 2, "obsm": 1, "motor": 1, "catr": 3, "circ": 2, "surf": 1, "situ": 1, "vma": 50,
        "jour": 7, "mois": 12, "lum": 5, "dep": 77, "com": 77317, "agg_": 2, "int_": 1,
        "atm": 0, "col": 6, "lat": 48.60, "long": 2.89, "hour": 17, "nb_victim": 2,
        "nb_vehicules": 1}


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


def start_gunicorn(work: Path, port: int, metrics_port: int) -> subprocess.Popen:
    env = {**os.environ, "MODEL_PATH": str(work / "current"), "HOST": "127.0.0.1",
           "PORT": str(port), "METRICS_PORT": str(metrics_port), "WEB_CONCURRENCY": "2",
           "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"), "PYTHONPATH": str(ROOT)}
    log = open(work / "gunicorn.log", "w")
    return subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                             "wsgi:app"], cwd=ROOT, env=env, stdout=log, stderr=log,
                            start_new_session=True)


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
    log = open(work / "prometheus.log", "a")
    process = subprocess.Popen([binary, f"--config.file={config}",
                                f"--storage.tsdb.path={work / 'prom-data'}",
                                f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                               stdout=log, stderr=log)
    wait_http(f"http://127.0.0.1:{port}/-/ready", 30)
    return process


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


def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="accident-soak-"))
    port, metrics_port, prom_port = free_port(), free_port(), free_port()
    url, metrics_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics"
    print(f"soak: training two models in {work}", flush=True)
    _, v2 = train_models(work, args.model)
    server = start_gunicorn(work, port, metrics_port)
    prometheus = None
    events, counters = {}, []
    try:
        wait_http(url + "/health/ready", 60)
        wait_http(metrics_url, 30)
        prometheus = start_prometheus(work, metrics_port, prom_port)
        v1_version = requests.get(url + "/model", timeout=5).json()["version"]
        plan = [(0.25, "worker_kill"), (0.50, "model_update"), (0.75, "prometheus_restart")]
        load = SteadyLoad(url, SEED, rate=args.rate, threads=4,
                          max_requests=int(args.rate * args.duration * 2) + 100).start()
        t0 = time.monotonic()
        while (elapsed := time.monotonic() - t0) < args.duration:
            if plan and elapsed >= plan[0][0] * args.duration:
                _, name = plan.pop(0)
                events[name] = {"at_s": round(elapsed, 1), **trigger(name, server, work, prometheus,
                                                                       metrics_port, prom_port)}
                if name == "prometheus_restart":
                    prometheus = events[name].pop("process")
                print(f"[{elapsed:6.1f}s] {name}: {events[name]}", flush=True)
            counters.append(requests_counted(metrics_url))
            if int(elapsed) % 30 == 0:
                print(f"[{elapsed:6.1f}s] {load.tally.summary()[:160]}", flush=True)
            time.sleep(1.0)
        tally = load.stop()
        counters.append(requests_counted(metrics_url))
        final_version = requests.get(url + "/model", timeout=5).json()["version"]
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
        if prometheus is not None and prometheus.poll() is None:
            prometheus.terminate()
            prometheus.wait(30)
    kill_at = t0 + events.get("worker_kill", {}).get("at_s", -1e9)
    failures = [(round(t - t0, 2), outcome) for t, outcome in tally.events
                if outcome != REFUSED and not (isinstance(outcome, int) and outcome < 500)]
    in_kill = [f for f in failures if 0 <= f[0] - (kill_at - t0) <= KILL_WINDOW]
    lost = [f for f in failures if f not in in_kill]
    v2_version = json.loads((v2 / "model_card.json").read_text())["version"]
    report = {
        "duration_s": args.duration, "rate": args.rate, "events": events,
        "sent": tally.sent, "answered": tally.answered, "ok_200": tally.outcomes[200],
        "refused": tally.count(REFUSED),
        "by_outcome": {str(k): v for k, v in tally.outcomes.items()},
        "answers_by_model": dict(tally.versions), "versions": [v1_version, v2_version],
        "final_model": final_version, "killed_worker_in_flight_failures": in_kill,
        "lost_accepted_requests": lost, "failure_examples": tally.examples,
        "counter_samples": len(counters),
        "counter_monotonic": all(b >= a for a, b in zip(counters, counters[1:])),
        "prometheus": prometheus is not None,
    }
    if args.keep:
        report["workdir"] = str(work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    report["passed"] = (not lost and len(in_kill) <= 1 and report["counter_monotonic"]
                        and final_version == v2_version and tally.versions[v2_version] > 0
                        and report["refused"] == 0)
    return report


def trigger(name, server, work: Path, prometheus, metrics_port, prom_port) -> dict:
    """Cause one event; return what was done."""
    if name == "worker_kill":
        victim = worker_pids(server.pid)[0]
        os.kill(victim, signal.SIGKILL)
        return {"killed_pid": victim}
    if name == "model_update":
        staging = work / "current.new"
        staging.symlink_to("v2")
        staging.replace(work / "current")
        server.send_signal(signal.SIGHUP)
        return {"model_path": "v2"}
    if prometheus is None:
        return {"skipped": "prometheus not installed", "process": None}
    prometheus.terminate()
    prometheus.wait(30)
    time.sleep(3.0)
    return {"down_s": 3.0, "process": start_prometheus(work, metrics_port, prom_port)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python load/soak.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--rate", type=float, default=20.0, help="requests/s (default 20)")
    parser.add_argument("--model", help="model directory for v1 (default: train a small one)")
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
