"""accident_api.server.gunicorn_compat: the drain relies on a sync worker's `handle` and
`sockets`; these tests fail when gunicorn changes either."""
import inspect
import socket
import threading

from gunicorn.workers.base import Worker
from gunicorn.workers.sync import SyncWorker

from accident_api.server.gunicorn_compat import drain_backlog


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
