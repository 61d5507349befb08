"""The log-linear latency histogram against exact nearest-rank percentiles."""
import math
import random

import pytest

from load.histogram import LatencyHistogram


def exact(values, q):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_within_relative_error(seed):
    rng = random.Random(seed)
    # latencies from 50 us to ~20 s, log-normal like real ones, microsecond resolution
    values = [round(min(20.0, rng.lognormvariate(-4, 1.5)), 6) + 50e-6 for _ in range(20000)]
    hist = LatencyHistogram()
    for value in values:
        hist.record(value)
    for q in (0, 50, 90, 95, 99, 99.9, 100):
        true = exact(values, q)
        got = hist.percentile(q)
        assert true - 1e-6 <= got <= true * (1 + hist.relative_error) + 1e-6, (q, true, got)
    assert hist.max == pytest.approx(max(values), abs=1e-6)
    assert hist.min == pytest.approx(min(values), abs=1e-6)
    assert hist.total == len(values)


def test_small_exact_values_and_empty():
    hist = LatencyHistogram()
    assert hist.percentile(50) is None and hist.max is None and hist.min is None
    for ms in (1, 2, 3, 4, 100):
        hist.record(ms / 1000)
    assert hist.percentile(50) == pytest.approx(0.003, rel=hist.relative_error)
    assert hist.percentile(80) == pytest.approx(0.004, rel=hist.relative_error)
    assert hist.percentile(99.9) == pytest.approx(0.100)     # capped at the exact max


def test_merge_equals_recording_everything_in_one():
    rng = random.Random(7)
    a, b, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for i in range(3000):
        value = rng.expovariate(50)
        (a if i % 2 else b).record(value)
        both.record(value)
    a.merge(b)
    assert a.counts == both.counts and a.total == both.total
    assert [a.percentile(q) for q in (50, 99)] == [both.percentile(q) for q in (50, 99)]


def test_negative_latency_counts_as_zero():
    hist = LatencyHistogram()
    hist.record(-0.001)
    assert hist.percentile(100) == 0.0
