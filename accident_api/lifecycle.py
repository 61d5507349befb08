"""gunicorn lifecycle guarantees: drain accepted connections on exit, swap the model on SIGHUP.

Why a drain: on SIGTERM the master closes its copy of the listening socket and each sync
worker finishes its current request and exits. Connections the kernel already completed but
no worker had accepted yet sit in the socket's backlog; when the last process holding the
socket exits they are reset - a client that had sent its request sees "connection reset".
`drain_backlog` (gunicorn `worker_exit`) serves every connection already queued, then closes
the worker's copy of the socket at once, so after the last worker's final empty `accept` a new
client is refused (nothing accepted, nothing lost) instead of reset. The remaining window is
the few microseconds between that last `accept` and `close`.

Why a hard exit: onnxruntime's C++ static destructors hang forever in a forked child at
interpreter exit (a condition variable inherited from the master's thread pool). A worker
that ended its loop (SIGTERM, max_requests, SIGHUP replacement) then sat unreaped until the
master SIGKILLed it after `graceful_timeout`/`timeout` - a stop took 20 s and a recycled worker
was not replaced for 30 s. `finish_worker` leaves with `os._exit` once the work is done; the
metric files are shared mmaps, already on disk, so nothing is lost by skipping finalizers.
"""
import logging
import os
import sys
import time

# A drain never outlives this share of the graceful timeout (the master SIGKILLs at the end).
DRAIN_SHARE = 0.5


def drain_backlog(server, worker) -> int:
    """Serve the connections already queued on the worker's listeners; return how many.

    Runs in the worker after its accept loop ended (alive=False). Stops at the first empty
    `accept` (or the deadline), then closes the listeners in this process.
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
            worker.handle(listener, client, addr)
            served += 1
        try:
            listener.close()
        except OSError:
            pass
    if served:
        server.log.info("worker %s served %d queued connection(s) before exiting", worker.pid,
                        served)
    return served


def _exit_status() -> int:
    """The status the worker was exiting with (gunicorn calls worker_exit in a `finally`)."""
    pending = sys.exc_info()[1]
    if pending is None:
        return 0
    if isinstance(pending, SystemExit):
        code = pending.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 1


def finish_worker(server, worker) -> None:
    """gunicorn `worker_exit`: drain the backlog, then exit without running C++ destructors."""
    if os.getpid() != worker.pid:
        return  # called in the master for a worker that had already vanished
    drain_backlog(server, worker)
    status = _exit_status()
    logging.shutdown()  # flush gunicorn's log handlers (stdout, stderr)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)
