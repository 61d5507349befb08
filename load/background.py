"""load/run.py's scheduler in a background thread: load *during* an event.

The reliability tests and the soak start a BackgroundLoad, cause the event (SIGTERM,
SIGHUP, SIGKILL, Prometheus restart) while requests keep leaving on the open-model
timetable, then stop it and read the outcomes: HTTP statuses, or refused / reset /
timeout / other for requests without a response (load.outcomes).
"""
from __future__ import annotations

import json
import threading
from itertools import repeat

from load.outcomes import REFUSED
from load.payloads import JSON, PREDICT, RequestSpec
from load.runner import RunResult, Schedule, run
from load.stats import Stats


def predict_requests(record: dict):
    """POST /predict of one record, forever (200 is the only expected answer)."""
    return repeat(RequestSpec("valid", "POST", PREDICT, frozenset({200}),
                              json.dumps(record).encode(), dict(JSON)))


class BackgroundLoad:
    """Send `requests_iter` to `url` at `rate` req/s until stopped (or `max_requests`).

    `concurrency` bounds the requests in flight; it is generous by default so a server
    pausing for a second shows up as latency, not as dropped sends. Use as a context
    manager; `.result` (live counts) and `.stats` can be read while it runs.
    """

    def __init__(self, url: str, requests_iter, rate: float = 40.0, concurrency: int = 16,
                 timeout: float = 10.0, max_requests: int = 20000, max_seconds: float = 900):
        self.url = url
        self.requests_iter = requests_iter
        self.plan = Schedule(rate, max_seconds, max_requests, concurrency, timeout,
                             read_versions=True)
        self.result = RunResult(Stats())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="background-load")

    def _run(self):
        run(self.url, self.requests_iter, self.plan, stop=self._stop, result=self.result)

    @property
    def stats(self) -> Stats:
        return self.result.stats

    @property
    def sent(self) -> int:
        return self.result.sent

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> "BackgroundLoad":
        self._thread.start()
        return self

    def finish(self, timeout: float = 60.0) -> Stats:
        """Wait until the timetable has run out (`max_requests` sent and answered)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the load did not finish in {timeout}s"
        return self.stats

    def stop(self) -> Stats:
        """End the timetable and wait for the requests in flight (bounded by the timeout)."""
        self._stop.set()
        self._thread.join(self.plan.timeout + 5)
        return self.stats

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
        return False

    def count(self, *labels: str) -> int:
        """Requests that ended with any of `labels` ("200", "refused", ...)."""
        return sum(self.stats.by_status.get(label, 0) for label in labels)

    def lost(self) -> int:
        """Requests the server accepted and did not answer as expected: every error except a
        refused connection (never accepted). Dropped sends (a full client pool) are apart."""
        return self.stats.errors - self.count(REFUSED)

    def summary(self) -> str:
        """One line of figures for the test report."""
        by = ", ".join(f"{k}={v}" for k, v in sorted(self.stats.by_status.items()))
        return (f"scheduled {self.result.scheduled}, sent {self.result.sent}, dropped "
                f"{self.result.dropped}, answered {self.stats.completed}, no answer "
                f"{self.stats.failed} [{by}], lost (not refused) {self.lost()}, versions "
                f"{dict(self.stats.versions)}")
