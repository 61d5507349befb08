"""Open-model scheduler: requests leave on a fixed timetable, whatever the server does.

Request i is due at t0 + i / rate. The scheduler (the calling thread) hands it to a pool
of ``concurrency`` worker threads, each with its own requests.Session, through a queue of
the same size. Latency is measured from the due time, not from when a worker got to it,
so a slow server shows up as latency instead of as a quietly lower send rate (coordinated
omission). When every worker is busy and the queue is full the request is dropped and
counted: the pool is bounded, the timetable is not bent.

A request without a response is classified (load.outcomes): refused, reset, timeout or
other, so a refused connection (never accepted) is not confused with an accepted request
the server dropped. `load.background.BackgroundLoad` runs this scheduler in a thread for
the reliability tests and the soak.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import requests

from load.outcomes import classify
from load.payloads import RequestSpec
from load.stats import Stats


@dataclass
class Schedule:
    """How much to send: ``rate`` req/s for ``duration`` s, at most ``max_requests``."""

    rate: float
    duration: float
    max_requests: int | None = None
    concurrency: int = 16
    timeout: float = 10.0
    late_after: float = 0.010       # a send starting this long after its slot is "late"
    read_versions: bool = False     # parse 200 answers for model_version (costs client CPU)


@dataclass
class RunResult:
    """Scheduler-side counts; the per-response tallies are in ``stats``."""

    stats: Stats
    scheduled: int = 0
    sent: int = 0
    dropped: int = 0
    cancelled: int = 0              # queued but never sent because the run was interrupted
    send_window: float = 0.0        # seconds the timetable covered
    elapsed: float = 0.0            # including the wait for the last responses
    interrupted: bool = False


def _worker(base_url: str, jobs: queue.Queue, stats: Stats, plan: Schedule) -> None:
    session = requests.Session()
    while True:
        job = jobs.get()
        if job is None:
            break
        due, spec = job
        started = time.perf_counter()
        status, failure, version = None, None, None
        try:
            response = session.request(spec.method, base_url + spec.path, data=spec.body,
                                       headers=spec.headers, timeout=plan.timeout)
            status = response.status_code
            if plan.read_versions and status == 200:
                version = _model_version(response)
        except requests.RequestException as exc:
            failure = classify(exc)
        stats.record(spec.kind, spec.expected, status, failure,
                     time.perf_counter() - due, started - due > plan.late_after, version)
    session.close()


def _model_version(response) -> str | None:
    try:
        document = response.json()
    except ValueError:
        return None
    return document.get("model_version") if isinstance(document, dict) else None


def run(base_url: str, requests_iter: Iterator[RequestSpec], plan: Schedule,
        progress: Callable[[RunResult, float], None] | None = None,
        progress_every: float = 1.0,
        waiting: Callable[[int], None] | None = None,
        stop: threading.Event | None = None,
        result: RunResult | None = None) -> RunResult:
    """Send on the timetable; Ctrl-C (KeyboardInterrupt) ends early with partial results.

    `waiting(n)` is called once the timetable is done while n responses are still due; a
    Ctrl-C during that wait stops it (those requests are reported as unfinished). Setting
    `stop` ends the timetable early (in-flight requests still finish); pass `result` to
    watch the counts from another thread while it runs.
    """
    result = result if result is not None else RunResult(Stats())
    stop = stop if stop is not None else threading.Event()
    jobs: queue.Queue = queue.Queue(maxsize=plan.concurrency)
    workers = [threading.Thread(target=_worker, daemon=True, name=f"load-{n}",
                                args=(base_url.rstrip("/"), jobs, result.stats, plan))
               for n in range(plan.concurrency)]
    for worker in workers:
        worker.start()
    t0 = time.perf_counter()
    try:
        _schedule(requests_iter, plan, jobs, result, t0, progress, progress_every, stop)
    except KeyboardInterrupt:
        result.interrupted = True
    # An uninterrupted timetable covers exactly scheduled/rate seconds unless the scheduler
    # itself fell behind; then the wall clock is the honest window.
    result.send_window = time.perf_counter() - t0
    if not result.interrupted:
        result.send_window = max(result.scheduled / plan.rate, result.send_window)
    try:
        pending = result.sent - result.stats.completed - result.stats.failed
        if waiting and pending > 0 and not result.interrupted:
            waiting(pending)
        _drain(jobs, workers, plan, result)
    except KeyboardInterrupt:
        # stop waiting: workers are daemon threads, their requests count as unfinished
        result.interrupted = True
    result.elapsed = time.perf_counter() - t0
    return result


def _schedule(requests_iter, plan, jobs, result, t0, progress, every, stop) -> None:
    """Hand request i to the pool at t0 + i/rate (payload built before the wait, not after)."""
    end, next_progress = t0 + plan.duration, t0 + every
    while plan.max_requests is None or result.scheduled < plan.max_requests:
        due = t0 + result.scheduled / plan.rate
        if due >= end:
            break
        spec = next(requests_iter)
        delay = due - time.perf_counter()
        if (delay > 0 and stop.wait(delay)) or stop.is_set():
            break
        result.scheduled += 1
        try:
            jobs.put_nowait((due, spec))
            result.sent += 1
        except queue.Full:
            result.dropped += 1
        now = time.perf_counter()
        if progress and now >= next_progress:
            progress(result, now - t0)
            next_progress += every * (1 + int((now - next_progress) // every))


def _drain(jobs, workers, plan, result) -> None:
    """Let queued and in-flight requests finish (all of them, or none queued if interrupted)."""
    if result.interrupted:
        while True:
            try:
                if jobs.get_nowait() is not None:
                    result.cancelled += 1
                    result.sent -= 1
            except queue.Empty:
                break
    deadline = time.monotonic() + plan.timeout + 1.0
    for _ in workers:
        try:
            jobs.put(None, timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            break
    for worker in workers:
        worker.join(timeout=max(0.0, deadline - time.monotonic()))
