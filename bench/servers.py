"""Start, probe and stop the servers under test, each on a free 127.0.0.1 port.

Every server is started in its own process group with output to a log file (never a pipe
nobody reads, which would block the server once full), and `stop` ends the whole group.
`ServerSet` tracks what is running so `run.py` can stop everything on exit or Ctrl-C.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.payloads import record_body

REPO = Path(__file__).resolve().parent.parent


def free_port():
    """Ask the kernel for a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """One running server: its process (group leader), port and log file."""

    name: str
    process: subprocess.Popen
    port: int
    log_path: Path
    extra: dict = field(default_factory=dict)

    @property
    def url(self):
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"


def start(name, argv, env, log_dir, port, ready_timeout=120.0):
    """Start `argv` with `env` added to ours, wait until `/predict` answers 200, return a Server."""
    log_path = Path(log_dir) / f"{name}.log"
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, cwd=REPO, env=full_env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(name, process, port, log_path)
    try:
        _wait_ready(server, ready_timeout)
    except BaseException:
        stop(server)
        raise
    return server


def _wait_ready(server, timeout):
    """Poll `/predict` with the seed record until it answers 200 (model loaded, workers up)."""
    deadline = time.monotonic() + timeout
    body = record_body()
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}; "
                               f"see {server.log_path}")
        try:
            reply = requests.post(server.url + "/predict", data=body, timeout=5,
                                  headers={"Content-Type": "application/json"})
            if reply.status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{server.name} not ready after {timeout:.0f}s; see {server.log_path}")


def stop(server, grace=10.0):
    """SIGTERM the server's process group, SIGKILL it after `grace` seconds."""
    if server.process.poll() is None:
        _signal_group(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(server.process.pid, signal.SIGKILL)
            server.process.wait(5)
    # Workers may outlive a master that exited on its own; end the rest of the group too.
    _signal_group(server.process.pid, signal.SIGKILL)


def _signal_group(pgid, sig):
    """Signal a process group we started, ignoring one that is already gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


class ServerSet:
    """The servers started by one benchmark run; `stop_all` ends every one of them."""

    def __init__(self):
        self.running = []

    def start(self, *args, **kwargs):
        """Start a server (see `start`) and remember it."""
        server = start(*args, **kwargs)
        self.running.append(server)
        return server

    def stop(self, server):
        """Stop one server and forget it."""
        stop(server)
        self.running.remove(server)

    def stop_all(self):
        """Stop everything still running (exit path, Ctrl-C)."""
        while self.running:
            self.stop(self.running[-1])


def python():
    """The interpreter running the benchmark (the project venv's)."""
    return sys.executable
