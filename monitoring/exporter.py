"""The sidecar exporter: gunicorn workers write metric files, the master serves their sum.

Import it only once the multiprocess directory is prepared (monitoring.multiproc):
prometheus_client is imported here.
"""
from prometheus_client import CollectorRegistry, start_http_server

from monitoring.compaction import LockedCollector


def start_sidecar(port: int, host: str, directory: str, log=None) -> bool:
    """Serve the aggregated metrics of the workers' files in `directory` on host:port
    (gunicorn `when_ready`, in the master).

    A metrics port that cannot be bound (taken, no permission) must never stop predictions:
    one WARNING line, the API keeps serving, and False is returned.
    """
    registry = CollectorRegistry()
    registry.register(LockedCollector(directory))
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        if log is not None:
            log.warning("metrics exporter NOT started on %s:%s (%s): predictions are served, "
                        "metrics are not scraped until a restart with a free METRICS_PORT",
                        host, port, exc)
        return False
    return True

