"""gunicorn's hooks (named in gunicorn.conf.py): each reads the preloaded app's config.

The model is loaded once, in the master (`preload_app`), and shared with the workers;
`when_ready` starts the sidecar metrics exporter, `child_exit` folds a dead worker's metric
files, `on_reload` (SIGHUP) swaps in a validated model update before new workers fork.
"""
import gc
import os
import sys

from accident_api.config import MODEL_EXTENSION
from accident_api.server.gunicorn_compat import (drain_backlog, keep_master_signal_queue,
                                                 redeliver_stop_signals)
from accident_api.service import LOG_EXTENSION, reload_model
from monitoring import exporter, metrics
from monitoring.compaction import compact_dead_worker


def _app(server):
    """The Flask app gunicorn serves (preloaded in the master, inherited by the workers)."""
    return server.app.wsgi()


def on_starting(server):
    """Refuse to serve without a verified model: one clear line on stderr, exit status 1."""
    served = _app(server).extensions[MODEL_EXTENSION]
    if not served.ready:
        server.log.error("accident-api cannot start: %s", served.reason)
        sys.exit(1)


def when_ready(server):
    """Before the first fork: the prediction log's database and tables, then the sidecar
    exporter (the workers' metrics, summed, on METRICS_PORT)."""
    log = _app(server).extensions[LOG_EXTENSION]
    if log is not None:
        log.prepare()
    config = _app(server).config
    if exporter.start_sidecar(config["METRICS_PORT"], config["HOST"],
                              config["PROMETHEUS_MULTIPROC_DIR"], server.log):
        server.log.info("metrics exporter on http://%s:%s/metrics", config["HOST"],
                        config["METRICS_PORT"])


def pre_fork(server, worker):
    """Freeze every object the master holds (app, model, libraries) just before a fork.

    A worker's garbage collector writes to the header of every object it scans; on objects
    inherited from the master each such write copies a whole page (copy-on-write), so without
    this each worker ends up with a private copy of most of the preloaded heap. Frozen objects
    are never scanned (CPython gc.freeze); refcounting still frees them. The first fork
    collects the master's garbage first so no freed holes get frozen; later forks (worker
    replacement, SIGHUP model reload) freeze only what is new.
    """
    if gc.get_freeze_count() == 0:
        gc.collect()
    gc.freeze()


def post_fork(server, worker):
    """In the worker, just after the fork, before it has signal handlers of its own."""
    keep_master_signal_queue(server)


def post_worker_init(worker):
    """In the worker, once it handles its own signals: its own buffer of metric updates and
    flush thread; then any stop signal that came while it was booting, sent again."""
    metrics.buffer_updates(_app(worker).config["METRICS_FLUSH_MS"] / 1000)
    redeliver_stop_signals()


def worker_exit(server, worker):
    """Serve the queued connections, write the last metric updates and prediction-log rows,
    then exit at once.

    onnxruntime's exit handlers hang in pthread_cond_destroy in a worker forked from a master
    that imported it, so a graceful stop would wait out graceful_timeout and be killed: the
    worker leaves with os._exit and the exit status gunicorn was giving it.
    """
    if os.getpid() != worker.pid:
        return  # gunicorn also calls worker_exit in the master, for a worker already gone
    drain_backlog(server, worker)  # connections already queued: served, not reset
    log = _app(server).extensions[LOG_EXTENSION]
    try:
        if log is not None:
            log.stop()  # the prediction-log rows still queued
        metrics.flush_updates()  # the buffered updates of the last interval, backlog's included
    except Exception:  # never in the way of the exit itself
        server.log.exception("worker %s: writing its last updates failed", worker.pid)
    pending = sys.exc_info()[1]  # the SystemExit gunicorn is raising in its `finally`
    if isinstance(pending, SystemExit):
        code = pending.code
        status = code if isinstance(code, int) else (0 if code is None else 1)
    else:
        status = 0 if pending is None else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def child_exit(server, worker):
    """Fold the dead worker's metric files into the archives (counters never go back)."""
    compact_dead_worker(worker.pid, _app(server).config["PROMETHEUS_MULTIPROC_DIR"])


def on_reload(server):
    """SIGHUP: validate the artifact at MODEL_PATH and swap it in before new workers fork."""
    reload_model(_app(server), server.log)
