"""The sidecar exporter: gunicorn workers write metric files, the master serves their sum.

prometheus_client chooses its multiprocess value store when it is first imported, so
`prepare_multiproc_dir` must run before anything imports it; this module therefore imports
prometheus_client (through prometheus_flask_exporter) only inside the functions that need it.

The directory comes from Config (PROMETHEUS_MULTIPROC_DIR) and is passed to each function as
an argument. os.environ is touched only because prometheus_client reads the variable itself
(in every worker, when a metric is first written): `prepare_multiproc_dir` sets it once, for
that library, and reads it back only to learn which directory the already-imported library
is using.
"""
import os
import sys
import tempfile
from pathlib import Path

from monitoring import drift_store  # numpy only: safe before prometheus_client is imported

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"


class MultiprocessSetupError(RuntimeError):
    """prometheus_client was imported before its multiprocess directory was set."""


def prepare_multiproc_dir(path: str | None) -> str:
    """Point prometheus_client at `path` (a fresh temporary directory when None), wiped.

    Only prometheus_client's `*.db` metric files and our own drift counts files (`drift_*`,
    monitoring.drift_store) are removed, so a mistyped path never costs anyone their files.
    When prometheus_client is already imported in this process (gunicorn re-reading its config
    on SIGHUP) the live directory is kept as is: wiping it would make counters go backwards.

    Returns
    -------
    str
        The directory in use.
    """
    if "prometheus_client" in sys.modules:
        # the imported library is bound to the directory in its environment variable
        current = os.environ.get(ENV_VAR)
        if current:
            return current
        raise MultiprocessSetupError(
            "prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set: "
            "prepare the directory first (gunicorn.conf.py does)")
    directory = Path(path) if path else Path(tempfile.mkdtemp(prefix="accident-api-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    drift_store.wipe(str(directory))
    # prometheus_client reads the variable itself (no API takes the path): the one place
    # that sets it. The workers, forked from this process, inherit it.
    os.environ[ENV_VAR] = str(directory)
    return str(directory)


def start_sidecar(port: int, host: str, directory: str, log=None) -> bool:
    """Serve the aggregated metrics of the workers' files in `directory` on host:port
    (gunicorn `when_ready`, in the master).

    A metrics port that cannot be bound (taken, no permission) must never stop predictions:
    one WARNING line, the API keeps serving, and False is returned.
    """
    from prometheus_client import CollectorRegistry, start_http_server

    from monitoring.compaction import LockedCollector
    from monitoring.drift_collector import DriftCollector

    registry = CollectorRegistry()
    registry.register(LockedCollector(directory))
    registry.register(DriftCollector(directory))  # model_feature_bin_total: drift_* files
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        if log is not None:
            log.warning("metrics exporter NOT started on %s:%s (%s): predictions are served, "
                        "metrics are not scraped until a restart with a free METRICS_PORT",
                        host, port, exc)
        return False
    return True


def mark_worker_dead(pid: int, directory: str) -> None:
    """Drop a dead worker's live gauges and fold its counters/histograms and drift counts in
    `directory` into the archive files (gunicorn `child_exit`): summed values unchanged,
    directory size bounded."""
    from monitoring.compaction import compact_dead_worker

    compact_dead_worker(pid, directory)
