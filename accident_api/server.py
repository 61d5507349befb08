"""gunicorn settings and hooks, shared by gunicorn.conf.py and `accident-api serve`.

Nothing here imports prometheus_client at module level (see monitoring.exporter).
"""
import gc
import os
import shutil
import sys

from accident_api import MODEL_EXTENSION, lifecycle, memory
from accident_api.access_log import AccessLogger
from accident_api.config import Config
from monitoring import exporter

# HTTP limits enforced by gunicorn before the app sees a request (README, "Reliability and
# security"): request line (414 above), header count and header size (431 above). Body size
# (MAX_CONTENT_LENGTH) and batch size (MAX_BATCH_SIZE) are enforced by the app (413).
LIMIT_REQUEST_LINE = 4094
LIMIT_REQUEST_FIELDS = 100
LIMIT_REQUEST_FIELD_SIZE = 8190


def on_starting(server):
    """Refuse to serve without a verified model: one clear line on stderr, exit status 1."""
    app = server.app.wsgi()  # the preloaded Flask app (loaded now if preload_app is off)
    service = app.extensions[MODEL_EXTENSION]
    if not service.ready:
        server.log.error("accident-api cannot start: %s", service.reason)
        sys.exit(1)


def pre_fork(server, worker):
    """Freeze every object the master holds (app, model, libraries) just before a fork.

    A worker's garbage collector writes to the header of every object it scans; on objects
    inherited from the master each such write copies a whole page (copy-on-write), so without
    this each worker ends up with a private copy of most of the preloaded heap. Frozen objects
    are never scanned (CPython gc.freeze); refcounting still frees them. The first fork
    collects the master's garbage first so no freed holes get frozen; later forks (worker
    replacement, SIGHUP model reload) freeze only what is new, an O(1) call.
    """
    if gc.get_freeze_count() == 0:
        gc.collect()
    gc.freeze()


def worker_exit(server, worker):
    """End the worker with its exit status but without C/C++ static destructors.

    onnxruntime's exit handlers hang in pthread_cond_destroy in a worker forked from a master
    that imported it (seen with gdb), so a graceful stop would wait out graceful_timeout and be
    killed. Buffered metric updates are written and logs flushed first.
    """
    if os.getpid() != worker.pid:
        return  # gunicorn also calls worker_exit in the master, for a worker already gone
    lifecycle.drain_backlog(server, worker)  # connections already queued: served, not reset
    from monitoring import metrics  # imported by the app already; not at module level (above)

    try:
        metrics.flush_updates()  # the buffered counts of the last interval, backlog's included
    except Exception:  # never in the way of the exit itself
        server.log.exception("worker %s: writing its last metric updates failed", worker.pid)
    pending = sys.exc_info()[1]  # the SystemExit gunicorn is raising in its `finally`
    if isinstance(pending, SystemExit):
        code = pending.code
        status = code if isinstance(code, int) else (0 if code is None else 1)
    else:
        status = 0 if pending is None else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def gunicorn_options(config: Config, temporary_metrics_dir: bool = False) -> dict:
    """gunicorn settings for `config`, hooks included (sidecar exporter, dead-worker cleanup).

    `temporary_metrics_dir`: the multiprocess directory was made for this run; remove it on exit.
    """

    def when_ready(server):
        if exporter.start_sidecar(config.METRICS_PORT, config.HOST,
                                  config.PROMETHEUS_MULTIPROC_DIR, server.log):
            server.log.info("metrics exporter on http://%s:%s/metrics", config.HOST,
                            config.METRICS_PORT)
        # the model is loaded and the workers are not forked yet: start-up code pages go back
        memory.release_file_pages()

    def post_worker_init(worker):
        from monitoring import metrics

        # in the worker, after the fork: its own buffer and flush thread
        metrics.buffer_updates(config.METRICS_FLUSH_MS / 1000)

    def child_exit(server, worker):
        exporter.mark_worker_dead(worker.pid, config.PROMETHEUS_MULTIPROC_DIR)

    def on_reload(server):
        # SIGHUP: validate the artifact at MODEL_PATH and swap it in before new workers fork
        from accident_api.model_update import reload_model

        reload_model(server.app.wsgi(), config.MODEL_PATH, config.MODEL_BACKEND, server.log)
        memory.release_file_pages()  # what loading the new model touched, as at start-up

    def on_exit(server):
        if temporary_metrics_dir and config.PROMETHEUS_MULTIPROC_DIR:
            shutil.rmtree(config.PROMETHEUS_MULTIPROC_DIR, ignore_errors=True)

    return {
        "bind": f"{config.HOST}:{config.PORT}",
        "workers": config.WEB_CONCURRENCY,
        "worker_class": "sync",
        "preload_app": True,  # the model is loaded and verified once, in the master
        "timeout": config.GUNICORN_TIMEOUT,
        "graceful_timeout": config.GRACEFUL_TIMEOUT,
        "max_requests": config.MAX_REQUESTS,
        "max_requests_jitter": config.MAX_REQUESTS_JITTER,
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_fields": LIMIT_REQUEST_FIELDS,
        "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
        "accesslog": "-" if config.ACCESS_LOG else None,
        "logger_class": AccessLogger,  # gunicorn's access line, formatted for less CPU
        "errorlog": "-",
        "loglevel": config.LOG_LEVEL,
        "proc_name": "accident-api",
        "control_socket_disable": True,  # not used; one socket path per host would collide
        "on_starting": on_starting,
        "when_ready": when_ready,
        "pre_fork": pre_fork,
        "post_worker_init": post_worker_init,
        "child_exit": child_exit,
        "worker_exit": worker_exit,
        "on_reload": on_reload,
        "on_exit": on_exit,
    }
