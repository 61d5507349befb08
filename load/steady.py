"""Steady closed-pace load that classifies every failure: the reliability tests' and soak's probe.

`load/run.py` answers "how fast and how well"; this answers "was any *accepted* request lost".
Each request ends as exactly one outcome:

- an HTTP status (the server answered),
- ``refused``: the TCP connection was never established (nothing was accepted, nothing lost),
- ``reset``: the connection was established and then dropped before a full response,
- ``timeout``: no answer within the client timeout,
- ``other``: anything else (the repr is kept in ``examples``).

Requests are paced per thread (``rate / threads`` each) and every request opens a new
connection (``Connection: close``, as gunicorn's sync workers answer anyway), so a refused
connection is always distinguishable from a reset one. urllib3 never retries (max_retries=0).
"""
from __future__ import annotations

import errno
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

REFUSED, RESET, TIMEOUT, OTHER = "refused", "reset", "timeout", "other"


def classify(exc: BaseException) -> str:
    """Map a requests exception to refused | reset | timeout | other (walks the cause chain)."""
    if isinstance(exc, requests.Timeout):
        return TIMEOUT
    seen, stack = set(), [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or \
                getattr(current, "errno", None) == errno.ECONNREFUSED:
            return REFUSED
        if type(current).__name__ == "NewConnectionError" and "refused" in str(current).lower():
            return REFUSED
        if isinstance(current, (ConnectionResetError, BrokenPipeError)) or \
                type(current).__name__ in ("RemoteDisconnected", "ProtocolError"):
            return RESET
        stack.extend([current.__cause__, current.__context__])
        stack.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        stack.append(getattr(current, "reason", None))
    return OTHER


@dataclass
class Tally:
    """Outcomes so far (thread-safe): counts by outcome, first examples of failures, times."""

    outcomes: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)
    versions: Counter = field(default_factory=Counter)
    events: list = field(default_factory=list)   # (monotonic time, outcome) of failures
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, outcome, detail=None, version=None):
        with self.lock:
            self.outcomes[outcome] += 1
            if version is not None:
                self.versions[version] += 1
            if not isinstance(outcome, int) or outcome >= 500:
                self.events.append((time.monotonic(), outcome))
                self.examples.setdefault(outcome, detail)

    @property
    def sent(self) -> int:
        return sum(self.outcomes.values())

    @property
    def answered(self) -> int:
        return sum(n for k, n in self.outcomes.items() if isinstance(k, int))

    def count(self, *outcomes) -> int:
        return sum(self.outcomes[o] for o in outcomes)

    def failed(self, ok=(200,)) -> int:
        """Requests that did not end with one of the `ok` statuses and were not refused."""
        return sum(n for k, n in self.outcomes.items() if k not in ok and k != REFUSED)

    def summary(self) -> str:
        by = ", ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items(), key=str))
        return (f"sent {self.sent}, answered {self.answered}, refused {self.count(REFUSED)}, "
                f"reset {self.count(RESET)}, timeout {self.count(TIMEOUT)}, other "
                f"{self.count(OTHER)} [{by}] versions {dict(self.versions)} "
                f"examples {self.examples}")


class SteadyLoad:
    """POST `body` to `url` from `threads` threads at `rate` req/s in total until stopped.

    Use as a context manager; `.tally` holds the outcomes. `max_requests` bounds the run.
    """

    def __init__(self, url: str, body: dict | None = None, rate: float = 40.0, threads: int = 4,
                 timeout: float = 10.0, max_requests: int = 20000, headers: dict | None = None,
                 path: str = "/predict"):
        self.url = url.rstrip("/") + path
        self.body = json.dumps(body).encode() if body is not None else None
        self.interval = threads / rate
        self.threads = threads
        self.timeout = timeout
        self.max_requests = max_requests
        self.headers = {"Content-Type": "application/json", "Connection": "close",
                        **(headers or {})}
        self.tally = Tally()
        self._stop = threading.Event()
        self._budget = threading.Semaphore(max_requests)
        self._workers = []

    def _loop(self, offset: float):
        session = requests.Session()
        next_due = time.monotonic() + offset
        while not self._stop.is_set() and self._budget.acquire(blocking=False):
            delay = next_due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            next_due += self.interval
            try:
                response = session.post(self.url, data=self.body, headers=self.headers,
                                        timeout=self.timeout)
                version = None
                if response.status_code == 200:
                    version = response.json().get("model_version")
                self.tally.record(response.status_code, response.text[:200], version)
            except requests.RequestException as exc:
                self.tally.record(classify(exc), repr(exc)[:300])
        session.close()

    def start(self) -> "SteadyLoad":
        for n in range(self.threads):
            thread = threading.Thread(target=self._loop, args=(n * self.interval / self.threads,),
                                      daemon=True, name=f"steady-{n}")
            thread.start()
            self._workers.append(thread)
        return self

    def stop(self) -> Tally:
        """Stop sending and wait for every request in flight to end (bounded by the timeout)."""
        self._stop.set()
        for thread in self._workers:
            thread.join(self.timeout + 5)
        return self.tally

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
        return False
