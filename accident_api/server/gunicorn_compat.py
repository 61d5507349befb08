"""The one gunicorn internal this project relies on: serving a sync worker's queued
connections before it exits (checked on gunicorn 27.0.1; tests/test_gunicorn_compat.py).

Why a drain: on SIGTERM the master closes its copy of the listening socket and each sync
worker finishes its current request and exits. Connections the kernel already completed but
no worker had accepted yet sit in the socket's backlog; when the last process holding the
socket exits they are reset - a client that had sent its request sees "connection reset".
`drain_backlog` (called from gunicorn's `worker_exit` hook) serves every connection already
queued with the worker's own request handler, then closes the worker's copy of the socket, so
after the last worker's final empty `accept` a new client is refused (nothing accepted,
nothing lost) instead of reset.
"""
import os
import time

# A drain never outlives this share of the graceful timeout (the master SIGKILLs at the end).
DRAIN_SHARE = 0.5


def drain_backlog(server, worker) -> int:
    """Serve the connections already queued on the worker's listeners; return how many.

    Runs in the worker after its accept loop ended. Stops at the first empty `accept` (or the
    deadline), then closes the listeners in this process.
    """
    if os.getpid() != worker.pid or not hasattr(worker, "handle"):
        return 0  # gunicorn also calls worker_exit in the master for a vanished worker
    deadline = time.monotonic() + max(1.0, server.cfg.graceful_timeout * DRAIN_SHARE)
    served = 0
    for listener in worker.sockets:
        listener.setblocking(False)
        while time.monotonic() < deadline:
            try:
                client, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # listener already closed (e.g. quick shutdown)
                break
            client.setblocking(True)
            worker.handle(listener, client, addr)  # SyncWorker's handler for one connection
            served += 1
        try:
            listener.close()
        except OSError:
            pass
    if served:
        server.log.info("worker %s served %d queued connection(s) before exiting", worker.pid,
                        served)
    return served
