"""load.timeline: each request counted in the interval it was due, rates per second."""
import pytest

from load.timeline import Timeline


def test_sends_and_outcomes_land_in_the_interval_they_were_due():
    line = Timeline(interval=1.0)
    for at, dropped, in_flight in [(0.1, False, 1), (0.6, False, 2), (1.2, False, 1),
                                   (2.5, True, 4), (2.9, False, 3)]:
        line.send(at, dropped, in_flight)
    line.outcome(0.1, "valid", "200", True, 0.004, False)
    line.outcome(0.6, "valid", "500", False, 0.010, True)     # answered in the next second
    line.outcome(1.2, "batch", "200", True, 0.020, False)
    line.outcome(2.9, "valid", "timeout", False, 2.0, False)
    series = line.to_dict(window=3.0)
    assert series["t_s"] == [0.0, 1.0, 2.0] and series["interval_s"] == 1.0
    assert series["target_rate"] == [2.0, 1.0, 2.0]
    assert series["sent_rate"] == [2.0, 1.0, 1.0]
    assert series["dropped_rate"] == [0.0, 0.0, 1.0]
    assert series["late_rate"] == [1.0, 0.0, 0.0]
    assert series["in_flight_max"] == [2, 1, 4]
    # the histogram's buckets: at most 1 / 128 above the true value
    assert series["latency_ms"]["p50"] == pytest.approx([4.0, 20.0, 2000.0], rel=1 / 128)
    assert series["latency_ms"]["p99"] == pytest.approx([10.0, 20.0, 2000.0], rel=1 / 128)
    assert series["by_status"] == {"200": [1.0, 1.0, 0.0], "500": [1.0, 0.0, 0.0],
                                   "timeout": [0.0, 0.0, 1.0]}
    assert series["errors_by_status"] == {"500": [1.0, 0.0, 0.0], "timeout": [0.0, 0.0, 1.0]}
    assert series["by_kind"] == {
        "batch": {"requests": [0.0, 1.0, 0.0], "expected": [0.0, 1.0, 0.0]},
        "valid": {"requests": [2.0, 0.0, 1.0], "expected": [1.0, 0.0, 0.0]}}


def test_a_partial_last_interval_gives_rates_per_second():
    line = Timeline(interval=1.0)
    for i in range(25):                       # 10 req/s for 2.5 s
        line.send(i / 10, False, 1)
    series = line.to_dict(window=2.5)
    assert series["t_s"] == [0.0, 1.0, 2.0]
    assert series["target_rate"] == [10.0, 10.0, 10.0]


def test_intervals_without_answers_have_no_latency():
    line = Timeline(interval=0.5)
    line.send(0.1, False, 1)
    line.send(0.7, True, 1)
    line.outcome(0.1, "valid", "200", True, 0.003, False)
    series = line.to_dict(window=1.0)
    assert series["t_s"] == [0.0, 0.5] and series["target_rate"] == [2.0, 2.0]
    assert series["latency_ms"]["p95"][1] is None
    assert series["latency_ms"]["p95"][0] == pytest.approx(3.0, rel=1 / 128)


def test_a_window_just_past_its_last_interval_adds_no_empty_one():
    """A 10 s timetable measures 10.0003 s on the wall clock: ten intervals, not eleven."""
    line = Timeline(interval=1.0)
    for i in range(100):
        line.send(i / 10, False, 1)
    series = line.to_dict(window=10.0003)
    assert series["t_s"] == [float(i) for i in range(10)]
    assert series["target_rate"] == [10.0] * 10
