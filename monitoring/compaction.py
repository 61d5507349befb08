"""Keep the multiprocess directory bounded: fold a dead worker's metric files into archives.

prometheus_client writes one file per metric type per process (counter_<pid>.db, ...) and
`mark_process_dead` removes only the dead process's *live* gauges. With `max_requests`
recycling workers, counter and histogram files of dead pids would pile up without bound and
every scrape would read them all. `compact_dead_worker` adds a dead worker's values into one
archive file per type (counter_archive.db, histogram_archive.db, gauge_<mode>_archive.db) and
deletes its files: the sums the exporter serves are unchanged, so counters stay monotonic.

The exporter (`LockedCollector`) and the compaction run in the gunicorn master and share
`LOCK`, so a scrape never sees the values in both files or in neither.
"""
import glob
import os
import threading

from prometheus_client import multiprocess
from prometheus_client.multiprocess import MultiProcessCollector

from monitoring.prometheus_compat import merge_file

LOCK = threading.Lock()
ARCHIVE = "archive"
# How a gauge mode folds two processes' values into one (the exporter's own aggregation).
_GAUGE_FOLD = {"sum": lambda a, b: a + b, "max": max, "min": min}


def _fold(kind: str, mode: str):
    if kind in ("counter", "histogram", "summary"):
        return lambda a, b: a + b
    return _GAUGE_FOLD.get(mode)


def compact_dead_worker(pid: int, directory: str) -> list:
    """Fold every metric file of dead process `pid` into the archives; return the files removed.

    Gauges in "all"/"mostrecent" modes carry per-process meaning and are simply removed with
    the process (as `mark_process_dead` does for live gauges).
    """
    removed = []
    with LOCK:
        multiprocess.mark_process_dead(pid, directory)
        for path in glob.glob(os.path.join(directory, f"*_{pid}.db")):
            parts = os.path.basename(path)[:-3].split("_")
            kind, mode = parts[0], (parts[1] if parts[0] == "gauge" else "")
            fold = _fold(kind, mode)
            if fold is not None:
                prefix = "_".join(parts[:-1])
                merge_file(os.path.join(directory, f"{prefix}_{ARCHIVE}.db"), path, fold)
            os.remove(path)
            removed.append(path)
    return removed


class LockedCollector:
    """MultiProcessCollector that reads under `LOCK` and drops info gauges that are not 1.

    `model_info` is an info gauge: 1 for the served model. After a model swap the master sets
    the replaced model's series to 0; leaving it out keeps `model_info` = the model in service.
    """

    INFO_METRICS = ("model_info",)

    def __init__(self, directory: str):
        self.collector = MultiProcessCollector(None, directory)

    def collect(self):
        with LOCK:
            metrics = list(self.collector.collect())
        for metric in metrics:
            if metric.name in self.INFO_METRICS:
                metric.samples = [s for s in metric.samples if s.value == 1]
        return metrics
