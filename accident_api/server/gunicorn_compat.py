"""The gunicorn internals this project relies on (checked on gunicorn 27.0.1;
tests/test_gunicorn_compat.py): serving a sync worker's queued connections before it exits,
and the master's signal queue, where a stop signal sent to a worker that is still booting
ends up.

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
import queue
import signal
import time

# A drain never outlives this share of the graceful timeout (the master SIGKILLs at the end).
DRAIN_SHARE = 0.5
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})

# This worker's copy of the master's signal queue, kept by `keep_master_signal_queue`.
_master_queue = None


def keep_master_signal_queue(server) -> None:
    """In a new worker, just after the fork (gunicorn `post_fork`): keep the queue into which
    the master's signal handlers, inherited through the fork, put what this worker receives
    until it installs its own."""
    global _master_queue
    _master_queue = server.SIG_QUEUE


def redeliver_stop_signals() -> list:
    """Once the worker's own handlers are in place (gunicorn `post_worker_init`): send this
    worker again every stop signal it received while it was booting; return them.

    The master sends SIGTERM to every worker when it stops; a worker forked moments before
    catches it with the master's handler, which only queues it, and would serve on until the
    graceful timeout ends in SIGKILL (https://github.com/benoitc/gunicorn/issues/1910).
    """
    received = []
    while _master_queue is not None:
        try:
            number = _master_queue.get_nowait()
        except queue.Empty:
            break
        if number in STOP_SIGNALS:
            received.append(number)
    for number in received:
        os.kill(os.getpid(), number)
    return received


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
