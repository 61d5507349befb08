"""Reliability under the weekly events: graceful stop/start, model update, worker crash.

Each test runs real gunicorn on 127.0.0.1 under load from load/run.py's scheduler
(load.background.BackgroundLoad, which tells a refused connection from a reset one),
triggers the event, reports its figures (the `figures` fixture) and asserts them. Timing
bounds are generous: the machine is 2 shared cores.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests

from load.background import BackgroundLoad, predict_requests
from load.outcomes import REFUSED, RESET
from tests.fixtures.reliability import send_signal, wait_ready
from tests.fixtures.service import TrickledRequest, metric_total

pytestmark = pytest.mark.integration

RATE = 40.0       # req/s: well under what 2 sync workers serve on 2 busy cores


def http_requests_total(server, endpoint=None) -> float:
    """Sum of http_requests_total (optionally of one endpoint) from the sidecar exporter, now."""
    labels = {} if endpoint is None else {"endpoint": endpoint}
    return metric_total(server.samples(), "http_requests_total", **labels)


def model_info_versions(server) -> dict:
    """{version: value} of the model_info series the exporter serves."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^model_info\{[^}]*version="([^"]+)"[^}]*\} (\S+)$', server.scrape(), re.M)}


def wait_for(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


IN_FLIGHT = 2           # one per worker: both are mid-request when SIGTERM arrives


def test_sigterm_finishes_in_flight_and_a_stop_start_cycle_loses_no_accepted_request(
        live_server_factory, seed_record, figures):
    server = live_server_factory(GRACEFUL_TIMEOUT=20)
    port = server.env["PORT"]
    body = json.dumps(seed_record).encode()

    # while the trickled requests hold both workers, requests queue up: a pool big enough
    # not to drop
    with BackgroundLoad(server.url, predict_requests(seed_record), rate=RATE,
                        concurrency=128) as load:
        time.sleep(2.0)
        in_flight = [TrickledRequest(port, body) for _ in range(IN_FLIGHT)]
        time.sleep(0.5)                            # each worker has taken one and is reading
        before_stop = load.sent
        sigterm_at = time.monotonic()
        send_signal(server, signal.SIGTERM)
        time.sleep(0.5)                            # the workers have the signal, mid-request
        statuses = [request.finish() for request in in_flight]
        server.process.wait(timeout=60)
        stop_seconds = time.monotonic() - sigterm_at
        time.sleep(1.0)                                  # down: connections are refused
        restarted = live_server_factory(PORT=port, GRACEFUL_TIMEOUT=20)
        wait_ready(restarted.url)
        time.sleep(2.0)
    after = [round(request.finished_at - sigterm_at, 2) for request in in_flight]
    figures(f"stop/start: {load.summary()}")
    figures(f"stop took {stop_seconds:.2f}s; {IN_FLIGHT} requests mid-body at SIGTERM -> "
            f"{statuses}, answered {after} s after SIGTERM; sent before SIGTERM {before_stop}")
    assert server.process.returncode == 0
    assert stop_seconds < 30, "workers must exit once their requests are done"
    assert all(" 200 " in status for status in statuses), \
        f"requests in flight at SIGTERM must finish: {statuses}"
    assert load.lost() == 0, f"accepted requests lost: {load.summary()}"
    assert load.count(RESET) == 0 and load.result.dropped == 0
    assert load.count(REFUSED) > 0, "the test must have sent while the server was down"
    assert load.count("200") > 3 * RATE, "too few answered requests to mean anything"


def test_sighup_swaps_a_valid_model_without_a_failed_request(
        live_server_factory, model_link, alt_model_dir, trained_model_dir, seed_record,
        figures):
    server = live_server_factory(MODEL_PATH=model_link.path)
    old = requests.get(server.url + "/model", timeout=5).json()["version"]
    new = json.loads((alt_model_dir / "model_card.json").read_text())["version"]
    assert old != new and model_info_versions(server) == {old: 1.0}
    with BackgroundLoad(server.url, predict_requests(seed_record), rate=RATE) as load:
        time.sleep(2.0)
        model_link.point_to(alt_model_dir)
        send_signal(server, signal.SIGHUP)
        wait_for(lambda: model_info_versions(server) == {new: 1.0}, what="model_info switch")
        swapped_at = load.sent
        wait_for(lambda: load.stats.versions[new] >= 40, what="40 answers from the new model")
        card_version = requests.get(server.url + "/model", timeout=5).json()["version"]
    figures(f"model update {old} -> {new}: {load.summary()}; model_info switched after "
            f"{swapped_at} requests; /model now {card_version}")
    assert load.stats.errors == 0 and load.result.dropped == 0, load.summary()
    assert load.stats.versions[old] > 0 and load.stats.versions[new] >= 40
    assert card_version == new
    assert f"model updated: {old} -> {new}" in server.logs()


def test_sighup_with_an_invalid_artifact_keeps_the_old_model(
        live_server_factory, model_link, alt_model_dir, seed_record, tmp_path, figures):
    server = live_server_factory(MODEL_PATH=model_link.path)
    old = requests.get(server.url + "/model", timeout=5).json()["version"]
    tampered = tmp_path / "tampered"
    shutil.copytree(alt_model_dir, tampered)
    with open(tampered / "model.onnx", "ab") as handle:
        handle.write(b"\0")                          # one byte: the sha256 no longer matches
    with BackgroundLoad(server.url, predict_requests(seed_record), rate=RATE) as load:
        time.sleep(1.5)
        model_link.point_to(tampered)
        send_signal(server, signal.SIGHUP)
        wait_for(lambda: "model update refused" in server.logs(), what="the refusal log line")
        time.sleep(2.0)
    refusal = [line for line in server.logs().splitlines() if "model update refused" in line]
    figures(f"invalid update: {load.summary()}; log: {refusal}")
    assert len(refusal) == 1 and "sha256" in refusal[0] and f"still serving {old}" in refusal[0]
    assert load.stats.errors == 0 and load.result.dropped == 0, load.summary()
    assert load.count("200") > 0 and set(load.stats.versions) == {old}
    assert requests.get(server.url + "/model", timeout=5).json()["version"] == old
    assert model_info_versions(server) == {old: 1.0}


def owner_pid(server_port: int, client_port: int) -> int:
    """PID of the process holding the server side of one loopback TCP connection (ss -tnp)."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"sport = :{server_port}",
                          f"dport = :{client_port}"], capture_output=True, text=True).stdout
    match = re.search(r"pid=(\d+)", out)
    assert match, f"no owner for :{server_port} <- :{client_port}: {out!r}"
    return int(match.group(1))


def hold_a_worker(url: str) -> socket.socket:
    """A request whose body never finishes arriving: the sync worker that accepted it is busy."""
    host, port = url.split("//")[1].split(":")
    held = socket.create_connection((host, int(port)), timeout=10)
    held.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{\"place\"")
    return held


def outcome_of(held: socket.socket) -> str:
    try:
        data = held.recv(1024)
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "timeout"
    return "reset" if data == b"" else data.split(b"\r\n", 1)[0].decode()


def test_sigkilled_worker_is_replaced_and_only_its_in_flight_request_fails(
        live_server_factory, seed_record, figures):
    server = live_server_factory()
    wait_for(lambda: len(server.worker_pids()) == 2, what="two workers")
    counts = []
    with BackgroundLoad(server.url, predict_requests(seed_record), rate=RATE) as load:
        time.sleep(1.5)
        held = hold_a_worker(server.url)
        time.sleep(0.3)
        victim = owner_pid(int(server.env["PORT"]), held.getsockname()[1])
        counts.append(http_requests_total(server))
        os.kill(victim, signal.SIGKILL)
        in_flight = outcome_of(held)
        held.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            counts.append(http_requests_total(server))
            pids = server.worker_pids()
            if len(pids) == 2 and victim not in pids:
                break
            time.sleep(0.1)
        replaced = server.worker_pids()
        time.sleep(2.0)
        counts.append(http_requests_total(server))
    counts.append(http_requests_total(server))
    answered = load.count("200")
    served = metric_total(server.wait_for_metrics(lambda s: metric_total(
        s, "http_requests_total", endpoint="predictions.predict") == answered),
        "http_requests_total", endpoint="predictions.predict")
    figures(f"worker {victim} SIGKILLed while holding one request (-> {in_flight}); workers "
            f"now {replaced}; load: {load.summary()}")
    figures(f"http_requests_total samples {counts[0]:.0f}..{counts[-1]:.0f} ({len(counts)} "
            f"scrapes); server counted {served:.0f} /predict")
    assert victim not in replaced and len(replaced) == 2
    assert in_flight == "reset", "the killed worker's in-flight request is the one failure"
    assert load.stats.errors == 0 and load.result.dropped == 0, load.summary()
    assert all(b >= a for a, b in zip(counts, counts[1:])), f"counter went backwards: {counts}"
    assert served == answered
