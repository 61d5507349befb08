"""monitoring.recorder: buffered metric updates are the same values as direct writes, later."""
import logging
import math
import threading
import time

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from monitoring.recorder import BufferedRecorder, PeriodicFlusher, Recorder

BUCKETS = (0.001, 0.01, 0.1, 1.0)
# on every bucket edge, between, below the first and above the last: placement is `<= edge`
VALUES = [0.0005, 0.001, 0.0010001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 1e9, 0.0]


def metrics_pair():
    """The same counter and histogram twice: one written directly, one through a recorder."""
    registry = CollectorRegistry()
    made = {}
    for kind in ("direct", "buffered"):
        made[kind] = (Counter(f"{kind}_requests_total", "r", ["status"], registry=registry),
                      Histogram(f"{kind}_seconds", "s", buckets=BUCKETS, registry=registry))
    return registry, made


def samples(registry, kind):
    """The exposition of one side, names without the side's prefix."""
    return {(s.name.replace(f"{kind}_", ""), tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() if family.name.startswith(kind)
            for s in family.samples if not s.name.endswith("_created")}


def test_buffered_updates_equal_direct_writes_once_flushed():
    registry, made = metrics_pair()
    direct, buffered = Recorder(), BufferedRecorder()
    for recorder, (counter, histogram) in ((direct, made["direct"]),
                                           (buffered, made["buffered"])):
        for i, value in enumerate(VALUES):
            recorder.inc(counter.labels(status="200"))
            recorder.inc(counter.labels(status="422"), 2.5)
            recorder.observe(histogram, value)
    before = samples(registry, "buffered")
    assert before[("requests_total", (("status", "200"),))] == 0  # held back
    assert before[("seconds_count", ())] == 0
    buffered.flush()
    assert samples(registry, "buffered") == samples(registry, "direct")
    assert samples(registry, "direct")[("seconds_bucket", (("le", "0.001"),))] == 3


def test_nan_goes_in_the_sum_and_no_bucket_as_histogram_observe_does():
    registry, made = metrics_pair()
    Recorder().observe(made["direct"][1], math.nan)
    buffered = BufferedRecorder()
    buffered.observe(made["buffered"][1], math.nan)
    buffered.flush()
    direct, ours = samples(registry, "direct"), samples(registry, "buffered")
    assert math.isnan(ours.pop(("seconds_sum", ()))) and math.isnan(direct.pop(("seconds_sum", ())))
    assert ours == direct


def test_flushing_from_another_thread_loses_no_update():
    registry = CollectorRegistry()
    counter = Counter("hits_total", "h", registry=registry)
    histogram = Histogram("lat_seconds", "l", buckets=BUCKETS, registry=registry)
    recorder = BufferedRecorder()
    done = threading.Event()

    def keep_flushing():
        while not done.is_set():
            recorder.flush()

    flusher = threading.Thread(target=keep_flushing)
    flusher.start()
    n = 100_000
    for _ in range(n):
        recorder.inc(counter)
        recorder.observe(histogram, 0.005)
    done.set()
    flusher.join()
    recorder.flush()
    assert registry.get_sample_value("hits_total") == n
    assert registry.get_sample_value("lat_seconds_count") == n
    assert registry.get_sample_value("lat_seconds_bucket", {"le": "0.01"}) == n
    assert registry.get_sample_value("lat_seconds_sum") == pytest.approx(n * 0.005)


@pytest.mark.parametrize("recorder_class", [Recorder, BufferedRecorder])
def test_many_observations_at_once_equal_one_by_one(recorder_class):
    registry, made = metrics_pair()
    values = np.array(VALUES * 50 + [math.nan])
    for value in values:
        Recorder().observe(made["direct"][1], float(value))
    recorder = recorder_class()
    recorder.observe_many(made["buffered"][1], values)
    recorder.flush()
    direct, ours = samples(registry, "direct"), samples(registry, "buffered")
    assert math.isnan(ours.pop(("seconds_sum", ()))) and math.isnan(direct.pop(("seconds_sum", ())))
    assert ours == direct


class RowsSeen:
    """Stands for a DriftCounter: records the row counts it was asked to count."""

    def __init__(self):
        self.counted = []

    def count(self, rows):
        self.counted.append(rows.shape[0])


def test_held_back_rows_are_bounded_and_counted_when_the_bound_is_hit():
    drift, recorder = RowsSeen(), BufferedRecorder(max_pending_rows=10)
    for _ in range(10):
        recorder.count_rows(drift, np.zeros((1, 3)))
    assert drift.counted == []  # held back, at the bound
    recorder.count_rows(drift, np.zeros((1, 3)))  # one more: all 11 counted now, at once
    assert drift.counted == [11]
    recorder.count_rows(drift, np.zeros((4, 3)))
    recorder.flush()
    assert drift.counted == [11, 4]


def test_periodic_flusher_writes_within_its_interval_and_the_rest_at_stop():
    registry = CollectorRegistry()
    counter = Counter("hits_total", "h", registry=registry)
    recorder = BufferedRecorder()
    flusher = PeriodicFlusher(recorder, 0.05).start()
    recorder.inc(counter, 3)
    deadline = time.monotonic() + 5
    while registry.get_sample_value("hits_total") != 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert registry.get_sample_value("hits_total") == 3  # no further update needed
    flusher.interval = 3600  # the next periodic flush would come far too late...
    recorder.inc(counter, 4)
    flusher.stop()  # ...stop writes it
    assert registry.get_sample_value("hits_total") == 7


class FailingOnce(BufferedRecorder):
    """A recorder whose first flush raises, as a full disk would."""

    def __init__(self):
        super().__init__()
        self.failures = 0

    def flush(self):
        if self.failures == 0:
            self.failures += 1
            raise OSError("No space left on device")
        super().flush()


def test_a_failing_flush_is_logged_and_counted_and_later_flushes_go_on(caplog):
    registry = CollectorRegistry()
    counter = Counter("hits_total", "h", registry=registry)
    recorder, reported = FailingOnce(), []
    flusher = PeriodicFlusher(recorder, 0.02, on_error=lambda: reported.append(1)).start()
    recorder.inc(counter, 5)
    with caplog.at_level(logging.ERROR, logger="monitoring.recorder"):
        deadline = time.monotonic() + 5
        while registry.get_sample_value("hits_total") != 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        flusher.stop()
    assert registry.get_sample_value("hits_total") == 5  # written by a later flush
    assert reported == [1]
    assert [r.getMessage() for r in caplog.records] == [
        "writing the buffered metric updates failed; later flushes go on"]
    assert "No space left on device" in caplog.text


def test_a_buffered_gauge_shows_the_requests_in_flight_at_the_flush():
    registry = CollectorRegistry()
    in_flight = Gauge("in_flight", "i", registry=registry)
    recorder = BufferedRecorder()
    for _ in range(50):  # finished requests: +1 then -1
        recorder.inc(in_flight, 1)
        recorder.inc(in_flight, -1)
    recorder.inc(in_flight, 1)  # one still being served
    recorder.flush()
    assert registry.get_sample_value("in_flight") == 1
    recorder.inc(in_flight, -1)
    recorder.flush()
    assert registry.get_sample_value("in_flight") == 0
