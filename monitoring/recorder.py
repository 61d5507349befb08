"""How the per-request metric updates reach prometheus_client: written at once, or summed in
memory and written in one go every few hundred milliseconds.

A multiprocess value write costs ~0.7 µs in a tight loop and ~3 µs inside a loaded gunicorn
worker (a lock, a pid check, a struct pack into the mmap file, each on cold caches), and a
/predict request makes twelve of them: about a tenth of the request's CPU. A gunicorn worker
therefore sums its requests' increments in memory (`BufferedRecorder`) and a background
thread writes them every METRICS_FLUSH_MS: one write per series that changed, whatever the
traffic. Values reach the sidecar exporter at most that late (Prometheus scrapes every 15 s),
and a graceful exit (max_requests recycling, SIGTERM, SIGHUP, worker timeout) writes what is
pending. What it gives up: a worker killed with SIGKILL loses the counts of its last interval,
the trade OpenTelemetry's periodic metric reader makes too. `Recorder` writes through: tests,
single-process use and METRICS_FLUSH_MS=0.

The in-flight gauge goes the same way: a request's +1 and -1 cancel out in memory, and each
flush writes the requests in flight at that moment, so the gauge is at most one interval old
(a request stuck for seconds shows, a finished one costs no write).

The drift counts of single rows are held back the same way, as the rows themselves, and
binned together at the flush: one vectorised pass over a few hundred rows instead of 28
`bisect` calls and 28 increments inside every /predict.

The counters and histograms passed in are label children of prometheus_client metrics. A
histogram's pending observations are written into its per-bucket values and sum, the pinned
client's attributes that monitoring.metrics.observe_many already writes.
"""
import threading
from bisect import bisect_left

import numpy as np


class Recorder:
    """Writes every update straight into the metric (what prometheus_client does alone)."""

    def inc(self, counter, amount: float = 1.0) -> None:
        """counter += amount; also a livesum gauge's change (requests in flight: +1 in, -1 out)."""
        counter.inc(amount)

    def observe(self, histogram, value: float) -> None:
        """One observation of `value` into `histogram`."""
        histogram.observe(value)

    def observe_rows(self, drift, rows) -> None:
        """Count the feature values of `rows` into `drift` (a monitoring.drift.DriftCounter)."""
        drift.observe(rows)

    def flush(self) -> None:
        """Nothing is ever pending."""


class BufferedRecorder(Recorder):
    """Sums updates in memory until `flush` writes them; safe to flush from another thread.

    The same values as writing each update at once, only later: a counter receives the sum
    of its increments, a histogram one increment per bucket observed into (the bucket chosen
    as Histogram.observe chooses it: the first upper bound >= value) and the sum of values.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._counters = {}    # counter -> pending amount (a gauge's: its pending change)
        self._histograms = {}  # histogram -> [pending sum, {bucket index: pending count}]
        self._rows = {}        # drift counter -> [pending single rows, (1, n) arrays]

    def inc(self, counter, amount: float = 1.0) -> None:
        # For the in-flight gauge a request's +1 and -1 cancel out: at a flush the pending
        # change is the number of requests in flight at that moment.
        with self._lock:
            counters = self._counters
            counters[counter] = counters.get(counter, 0.0) + amount

    def observe(self, histogram, value: float) -> None:
        index = bisect_left(histogram._upper_bounds, value)
        with self._lock:
            pending = self._histograms.get(histogram)
            if pending is None:
                pending = self._histograms[histogram] = [0.0, {}]
            pending[0] += value
            if value == value:  # NaN: in the sum, in no bucket, as Histogram.observe does
                buckets = pending[1]
                buckets[index] = buckets.get(index, 0) + 1

    def observe_rows(self, drift, rows) -> None:
        # One row (/predict) costs ~9 µs to bin and count alone, a few hundred rows binned
        # together ~0.3 µs each; a batch already is such a pass and is counted at once.
        if rows.shape[0] != 1:
            drift.observe(rows)
            return
        with self._lock:
            pending = self._rows.get(drift)
            if pending is None:
                pending = self._rows[drift] = []
            pending.append(rows)

    def flush(self) -> None:
        """Write everything pending into the metrics (one write per changed value)."""
        with self._lock:
            counters, self._counters = self._counters, {}
            histograms, self._histograms = self._histograms, {}
            rows, self._rows = self._rows, {}
        for drift, parts in rows.items():
            drift.observe(np.concatenate(parts))
        for counter, amount in counters.items():
            if amount:  # a gauge's +1/-1 of finished requests: nothing to write
                counter.inc(amount)
        for histogram, (total, buckets) in histograms.items():
            histogram._sum.inc(total)
            for index, count in buckets.items():
                histogram._buckets[index].inc(count)


class PeriodicFlusher:
    """A daemon thread calling `recorder.flush()` every `interval` seconds until `stop()`."""

    def __init__(self, recorder: Recorder, interval: float):
        self.recorder = recorder
        self.interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-flush", daemon=True)

    def start(self) -> "PeriodicFlusher":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            self.recorder.flush()

    def stop(self) -> None:
        """Stop the thread, then write what is still pending (called once, at worker exit)."""
        self._stopped.set()
        self._thread.join(timeout=max(1.0, 2 * self.interval))
        self.recorder.flush()
