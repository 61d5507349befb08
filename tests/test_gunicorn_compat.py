"""accident_api.server.gunicorn_compat: the drain relies on a sync worker's `handle` and
`sockets`, the redelivery of stop signals on the master's `SIG_QUEUE`; these tests fail when
gunicorn changes any of them."""
import inspect
import os
import signal
import socket
import sys
import threading
import time

import pytest
from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker
from gunicorn.workers.sync import SyncWorker

from accident_api.server.gunicorn_compat import drain_backlog
from tests.fixtures.service import ROOT, server_env, start_process


def test_sync_workers_still_handle_one_accepted_connection_and_keep_their_sockets():
    assert list(inspect.signature(SyncWorker.handle).parameters) == [
        "self", "listener", "client", "addr"]
    assert "sockets" in inspect.signature(Worker.__init__).parameters
    assert "self.sockets = sockets" in inspect.getsource(Worker.__init__)


class FakeServer:
    class cfg:
        graceful_timeout = 2

    class log:
        lines = []

        @classmethod
        def info(cls, message, *args):
            cls.lines.append(message % args)


class RecordingWorker:
    """A worker whose `handle` answers like SyncWorker would, and records what it served."""

    def __init__(self, listener):
        import os

        self.pid = os.getpid()
        self.sockets = [listener]
        self.served = []

    def handle(self, listener, client, addr):
        self.served.append(client.recv(1024))
        client.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        client.close()


def test_the_drain_serves_every_queued_connection_then_closes_the_listener():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    for index, client in enumerate(clients):
        client.sendall(f"GET /{index} HTTP/1.1\r\n\r\n".encode())
    worker = RecordingWorker(listener)
    answers = []
    readers = [threading.Thread(target=lambda c=c: answers.append(c.recv(1024)))
               for c in clients]
    for reader in readers:
        reader.start()
    assert drain_backlog(FakeServer, worker) == 3
    for reader in readers:
        reader.join(5)
    assert sorted(worker.served) == [b"GET /0 HTTP/1.1\r\n\r\n", b"GET /1 HTTP/1.1\r\n\r\n",
                                     b"GET /2 HTTP/1.1\r\n\r\n"]
    assert all(answer.startswith(b"HTTP/1.1 200 OK") for answer in answers)
    assert listener.fileno() == -1  # closed: a later client is refused, not left queued
    assert FakeServer.log.lines[-1].endswith("served 3 queued connection(s) before exiting")


def test_the_masters_handlers_queue_signals_and_a_worker_installs_its_own():
    assert "self.SIG_QUEUE.put_nowait(sig)" in inspect.getsource(Arbiter.signal)
    assert "signal.signal(signal.SIGTERM, self.handle_exit)" in inspect.getsource(
        Worker.init_signals)


# gunicorn.conf.py with a worker that takes 2 s between its fork and its own signal handlers
SLOW_BOOT_CONF = """
import runpy, time
globals().update(runpy.run_path({conf!r}))
_post_fork = post_fork

def post_fork(server, worker):
    _post_fork(server, worker)
    time.sleep(2)
"""


@pytest.mark.integration
def test_a_worker_stopped_while_booting_exits_at_once(trained_model_dir, tmp_path):
    conf = tmp_path / "slow_boot.conf.py"
    conf.write_text(SLOW_BOOT_CONF.format(conf=str(ROOT / "gunicorn.conf.py")))
    env = server_env(trained_model_dir, tmp_path, WEB_CONCURRENCY="1", GRACEFUL_TIMEOUT="30")
    process = start_process([sys.executable, "-m", "gunicorn", "-c", str(conf), "wsgi:app"],
                            env, tmp_path / "logs")
    logs = tmp_path / "logs" / "stderr"
    try:
        deadline = time.monotonic() + 60
        while "Booting worker" not in logs.read_text():
            assert process.poll() is None and time.monotonic() < deadline, logs.read_text()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)  # the worker is in its 2 s before its handlers
        # without the redelivery the master would wait out its 30 s graceful timeout
        assert process.wait(timeout=15) == 0, logs.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    assert "Worker exiting" in logs.read_text()
