"""Thread-safe tally of load-test outcomes: counts by status and kind, errors, latency."""
from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict

from load.histogram import LatencyHistogram
from load.timeline import Timeline

# What counts as an error (and against --max-error-rate): a transport failure (connection
# refused/reset, timeout) or any status the request's kind does not expect. No kind expects
# a 5xx, so every 5xx is an error; a 422 answered to an invalid payload is not. The gate
# also counts sends the server never got to answer (dropped, unfinished): see report.py.
ERROR_DEFINITION = ("transport failures (refused, reset, timeout, other) + statuses the "
                    "request kind does not expect (every 5xx; e.g. 422 to a valid record, "
                    "200 to an invalid one)")
MAX_EVENTS = 10_000    # failure timestamps kept (a dead server must not grow memory forever)


class Stats:
    """Outcomes recorded by the load engine, read (from any thread) by the progress line, a
    BackgroundLoad's owner and the report."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.histogram = LatencyHistogram()
        self.by_status: Counter[str] = Counter()
        self.by_kind: dict[str, Counter[str]] = defaultdict(Counter)
        self.unexpected: Counter[str] = Counter()
        self.completed = 0     # got an HTTP response
        self.failed = 0        # transport failure, no response
        self.errors = 0
        self.late = 0          # started later than the lateness threshold after its slot
        self.versions: Counter[str] = Counter()   # model_version of 200 answers, when read
        self.events: list[tuple[float, str]] = []  # (time.monotonic(), label) of each error
        self.timeline = Timeline()

    def record(self, kind: str, expected: frozenset[int], status: int | None,
               failure: str | None, latency: float, late: bool,
               version: str | None = None, at: float | None = None) -> None:
        """One finished request; ``status`` None means ``failure`` names what went wrong;
        ``at``: when it was due, in seconds from the start of the timetable (timeline)."""
        label = str(status) if status is not None else failure
        now = time.monotonic()
        with self._lock:
            if version is not None:
                self.versions[version] += 1
            self.histogram.record(latency)
            self.by_status[label] += 1
            self.by_kind[kind][label] += 1
            self.late += late
            if at is not None:
                self.timeline.outcome(at, kind, label, status in expected, latency, late)
            if status is None:
                self.failed += 1
            else:
                self.completed += 1
            if status not in expected:
                self.errors += 1
                self.unexpected[f"{kind} -> {label}"] += 1
                if len(self.events) < MAX_EVENTS:
                    self.events.append((now, label))

    def snapshot(self) -> dict:
        """Consistent copy for the progress line and the report."""
        with self._lock:
            return {
                "completed": self.completed, "failed": self.failed, "errors": self.errors,
                "late": self.late, "by_status": dict(self.by_status),
                "by_kind": {kind: dict(counts) for kind, counts in self.by_kind.items()},
                "unexpected": dict(self.unexpected), "versions": dict(self.versions),
                "p50": self.histogram.percentile(50), "p90": self.histogram.percentile(90),
                "p95": self.histogram.percentile(95), "p99": self.histogram.percentile(99),
                "p99.9": self.histogram.percentile(99.9), "max": self.histogram.max,
                "min": self.histogram.min,
            }
