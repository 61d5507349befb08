"""How per-request metric updates reach prometheus_client: written at once, or summed in memory
and written together every METRICS_FLUSH_MS by a background thread.

Every per-request update goes through `monitoring.metrics.recorder`: counters, histograms, the
in-flight gauge and the drift counts. In a gunicorn worker that is a `BufferedRecorder`: a
multiprocess write takes a lock, checks the pid and packs into an mmap'd file, and a /predict
makes over a dozen of them, so the worker sums them and a `PeriodicFlusher` writes one update
per changed series per interval, whatever the traffic. The in-flight gauge's +1 and -1 of a
finished request cancel out in memory; a flush writes the requests in flight at that moment.
Drift rows are held back and binned together at the flush (one vectorised pass).

What it gives up: a worker killed with SIGKILL loses its last interval's updates (a graceful
exit writes them: gunicorn's `worker_exit`). Elsewhere (tests, one process,
METRICS_FLUSH_MS=0) `Recorder` writes each update at once.
"""
import logging
import threading
from bisect import bisect_left

import numpy as np

from monitoring.prometheus_compat import add_observations, bucket_bounds

log = logging.getLogger(__name__)


class Recorder:
    """Writes every update straight into the metric."""

    def inc(self, counter, amount: float = 1.0) -> None:
        """counter += amount; also a gauge's change (requests in flight: +1 in, -1 out)."""
        counter.inc(amount)

    def observe(self, histogram, value: float) -> None:
        """One observation of `value` into `histogram`."""
        histogram.observe(value)

    def observe_many(self, histogram, values: np.ndarray) -> None:
        """One observation per value of `values` into `histogram`."""
        for value in values.tolist():
            histogram.observe(value)

    def count_rows(self, drift, rows: np.ndarray) -> None:
        """Count the feature values of `rows` into `drift` (a monitoring.drift.DriftCounter)."""
        drift.count(rows)

    def flush(self) -> None:
        """Nothing is ever pending."""


class BufferedRecorder(Recorder):
    """Sums updates in memory until `flush` writes them; safe to flush from another thread.

    The same values as writing each update at once, only later: a counter receives the sum of
    its increments, a histogram one increment per bucket observed into (the first upper bound
    >= the value, as Histogram.observe chooses) and the sum of the values.

    At most `max_pending_rows` drift rows are held: the update that would hold more bins and
    counts them at once, in the recording thread, so memory stays bounded and nothing is lost.
    """

    def __init__(self, max_pending_rows: int = 10_000):
        self.max_pending_rows = max_pending_rows
        self._lock = threading.Lock()
        self._counters = {}    # counter -> pending amount (a gauge's: its pending change)
        self._histograms = {}  # histogram -> [pending sum, {bucket index: pending count}]
        self._rows = {}        # drift counter -> [row arrays]
        self._pending_rows = 0

    def inc(self, counter, amount: float = 1.0) -> None:
        with self._lock:
            self._counters[counter] = self._counters.get(counter, 0.0) + amount

    def observe(self, histogram, value: float) -> None:
        index = bisect_left(bucket_bounds(histogram), value)
        with self._lock:
            pending = self._pending_histogram(histogram)
            pending[0] += value
            if value == value:  # NaN: in the sum, in no bucket, as Histogram.observe does
                pending[1][index] = pending[1].get(index, 0) + 1

    def observe_many(self, histogram, values: np.ndarray) -> None:
        values = np.asarray(values, dtype="float64")
        counted = values[~np.isnan(values)]
        indices = np.searchsorted(bucket_bounds(histogram), counted, side="left")
        found, counts = np.unique(indices, return_counts=True)
        with self._lock:
            pending = self._pending_histogram(histogram)
            pending[0] += float(values.sum())
            buckets = pending[1]
            for index, count in zip(found.tolist(), counts.tolist()):
                buckets[index] = buckets.get(index, 0) + count

    def _pending_histogram(self, histogram) -> list:
        pending = self._histograms.get(histogram)
        if pending is None:
            pending = self._histograms[histogram] = [0.0, {}]
        return pending

    def count_rows(self, drift, rows: np.ndarray) -> None:
        with self._lock:
            self._rows.setdefault(drift, []).append(rows)
            self._pending_rows += rows.shape[0]
            overflow = self._take_rows() if self._pending_rows > self.max_pending_rows else {}
        _count_rows(overflow)

    def _take_rows(self) -> dict:
        rows, self._rows, self._pending_rows = self._rows, {}, 0
        return rows

    def flush(self) -> None:
        """Write everything pending into the metrics (one write per changed value)."""
        with self._lock:
            counters, self._counters = self._counters, {}
            histograms, self._histograms = self._histograms, {}
            rows = self._take_rows()
        _count_rows(rows)
        for counter, amount in counters.items():
            if amount:  # a gauge's +1/-1 of finished requests: nothing to write
                counter.inc(amount)
        for histogram, (total, buckets) in histograms.items():
            add_observations(histogram, buckets, total)


def _count_rows(rows_by_drift: dict) -> None:
    for drift, parts in rows_by_drift.items():
        drift.count(np.concatenate(parts))


class PeriodicFlusher:
    """A daemon thread calling `recorder.flush()` every `interval` seconds until `stop()`.

    A flush that raises is logged and reported to `on_error` (a metric); the updates it had
    not written yet are lost, and the next interval's flush runs as usual.
    """

    def __init__(self, recorder: Recorder, interval: float, on_error=None):
        self.recorder = recorder
        self.interval = interval
        self.on_error = on_error
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-flush", daemon=True)

    def start(self) -> "PeriodicFlusher":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            self.flush_once()

    def flush_once(self) -> None:
        """One flush; a failure is logged and reported, never raised."""
        try:
            self.recorder.flush()
        except Exception:
            log.exception("writing the buffered metric updates failed; later flushes go on")
            if self.on_error is not None:
                self.on_error()

    def stop(self) -> None:
        """Stop the thread, then write what is still pending (called once, at worker exit)."""
        self._stopped.set()
        self._thread.join(timeout=max(1.0, 2 * self.interval))
        self.flush_once()
