"""A run's figures per interval of its timetable, for the charts of the HTML report.

Every request is counted in the interval it was due (its slot on the timetable, or for a
follow-up such as feedback the time it fell due), whatever happened to it later: a second
in which the server stalled shows the latency its own requests suffered, not that of the
requests that happened to finish in it. Counts are given per second, so the series read
the same whatever the interval.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from load.histogram import LatencyHistogram

SERIES_PERCENTILES = ("p50", "p95", "p99")


@dataclass
class _Slot:
    scheduled: int = 0
    dropped: int = 0
    late: int = 0
    in_flight: int = 0               # the most requests sent and not yet answered
    follow_ups: int = 0              # follow-ups (feedback) that fell due in the interval
    follow_ups_dropped: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    outcomes: Counter = field(default_factory=Counter)   # (kind, label, expected) -> n


class Timeline:
    """Per-interval counts; fed by the engine (sends, follow-ups) and by Stats.record
    (outcomes)."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._slots: dict[int, _Slot] = {}

    def _slot(self, at: float) -> _Slot:
        index = max(0, int(at // self.interval))
        slot = self._slots.get(index)
        if slot is None:
            slot = self._slots[index] = _Slot()
        return slot

    def send(self, at: float, dropped: bool, in_flight: int) -> None:
        """A request due ``at`` s into the run was handed on (or dropped, pool full)."""
        slot = self._slot(at)
        slot.scheduled += 1
        slot.dropped += dropped
        slot.in_flight = max(slot.in_flight, in_flight)

    def follow_up(self, at: float, dropped: bool) -> None:
        """A follow-up request due ``at`` s into the run was handed on (or dropped)."""
        slot = self._slot(at)
        slot.follow_ups += 1
        slot.follow_ups_dropped += dropped

    def outcome(self, at: float, kind: str, label: str, expected: bool, latency: float,
                late: bool) -> None:
        """How the request due ``at`` s into the run ended."""
        slot = self._slot(at)
        slot.latency.record(latency)
        slot.late += late
        slot.outcomes[(kind, label, expected)] += 1

    def to_dict(self, window: float) -> dict:
        """JSON-able series over ``window`` s: one value per interval, rates per second."""
        # whole intervals of the window, and the partial last one if a request was due in
        # it (a window a few microseconds past its last whole interval adds none)
        count = max(math.floor(window / self.interval + 1e-9), max(self._slots, default=-1) + 1)
        starts = [i * self.interval for i in range(count)]
        widths = [max(min(self.interval, window - start), 1e-9) if start < window
                  else self.interval for start in starts]
        slots = [self._slots.get(i, _Slot()) for i in range(count)]

        def rate(values):
            return [round(v / w, 3) for v, w in zip(values, widths)]

        labels = sorted({label for s in slots for _, label, _ in s.outcomes})
        kinds = sorted({kind for s in slots for kind, _, _ in s.outcomes})
        errors = sorted({label for s in slots for _, label, ok in s.outcomes if not ok})
        return {
            "interval_s": self.interval,
            "t_s": [round(start, 3) for start in starts],
            "target_rate": rate(s.scheduled for s in slots),
            "sent_rate": rate(s.scheduled - s.dropped for s in slots),
            "dropped_rate": rate(s.dropped for s in slots),
            "late_rate": rate(s.late for s in slots),
            "in_flight_max": [s.in_flight for s in slots],
            "follow_up_sent_rate": rate(s.follow_ups - s.follow_ups_dropped for s in slots),
            "follow_up_dropped_rate": rate(s.follow_ups_dropped for s in slots),
            "latency_ms": {name: [_ms(s.latency.percentile(float(name[1:]))) for s in slots]
                           for name in SERIES_PERCENTILES},
            "by_status": {label: rate(_total(s, label=label) for s in slots)
                          for label in labels},
            "errors_by_status": {label: rate(_total(s, label=label, expected=False)
                                             for s in slots) for label in errors},
            "by_kind": {kind: {"requests": rate(_total(s, kind=kind) for s in slots),
                               "expected": rate(_total(s, kind=kind, expected=True)
                                                for s in slots)}
                        for kind in kinds},
        }


def _total(slot: _Slot, kind=None, label=None, expected=None) -> int:
    return sum(n for (k, lab, ok), n in slot.outcomes.items()
               if (kind is None or k == kind) and (label is None or lab == label)
               and (expected is None or ok == expected))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)
