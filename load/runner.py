"""The load engine: requests leave on a fixed timetable, whatever the server does.

Request i is due at t0 + i / rate. The scheduler hands it to one of at most
``concurrency`` workers, or queues it (at most as many again) until one is free; scheduler
and workers are tasks of one asyncio event loop in the calling thread. A worker sends on an
HTTP/1.1 connection (load.http_client) that it leaves to the next worker while the server
keeps it open, the most recently used first, so a keep-alive server sees as many
connections as requests were really in flight at once. Latency is measured from the due
time, not from when a worker got to it, so a slow server shows up as latency instead of as
a quietly lower send rate (coordinated omission). When every worker is busy and the queue
is full the request is dropped and counted: the pool is bounded, the timetable is not bent.

A request without a response is classified (load.outcomes): refused, reset, timeout or
other, so a refused connection (never accepted) is not confused with an accepted request
the server dropped. load/run.py, `load.background.BackgroundLoad` (the reliability tests
and the soak, from a thread) and bench/ all send through `run`.
"""
from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterator

import httptools
import uvloop

from load.http_client import Connection, Endpoint
from load.outcomes import classify
from load.payloads import RequestSpec
from load.stats import Stats

TICK = 0.05     # s: the longest the scheduler and the drain go without looking at stop/Ctrl-C
TIMER_RESOLUTION = 0.001    # s: the event loop's timers are in milliseconds


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
    started_at: float = 0.0         # time.time() when the timetable started


def run(base_url: str, requests_iter: Iterator[RequestSpec], plan: Schedule,
        progress: Callable[[RunResult, float], None] | None = None,
        progress_every: float = 1.0,
        waiting: Callable[[int], None] | None = None,
        stop: threading.Event | None = None,
        result: RunResult | None = None) -> RunResult:
    """Send on the timetable; Ctrl-C (SIGINT, in the main thread) ends early with partial
    results.

    `waiting(n)` is called once the timetable is done while n responses are still due; a
    Ctrl-C during that wait stops it (those requests are reported as unfinished). Setting
    `stop` ends the timetable early (in-flight requests still finish); pass `result` to
    watch the counts from another thread while it runs.
    """
    engine = _Engine(Endpoint.parse(base_url), plan,
                     result if result is not None else RunResult(Stats()),
                     stop if stop is not None else threading.Event())
    # uvloop: the event loop's own cost per connection is a large part of the client's CPU
    # when the server closes every connection (gunicorn's sync workers)
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(engine.main(requests_iter, progress, progress_every, waiting))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return engine.result


class _Engine:
    """One run: the scheduler, its workers and their connections, on one event loop."""

    def __init__(self, endpoint: Endpoint, plan: Schedule, result: RunResult,
                 stop: threading.Event) -> None:
        self.endpoint, self.plan, self.result, self.stop = endpoint, plan, result, stop
        self.interrupts = 0
        self.t0 = 0.0
        self.workers: set[asyncio.Task] = set()
        self.queued: deque = deque()            # (due, spec) waiting for a free worker
        self.idle: list[Connection] = []        # open connections no worker is using

    def _interrupt(self) -> None:
        self.interrupts += 1
        self.result.interrupted = True

    async def main(self, requests_iter, progress, every, waiting) -> None:
        loop = asyncio.get_running_loop()
        in_main_thread = threading.current_thread() is threading.main_thread()
        if in_main_thread:
            previous = signal.getsignal(signal.SIGINT)
            loop.add_signal_handler(signal.SIGINT, self._interrupt)
        try:
            await self._run(requests_iter, progress, every, waiting)
        finally:
            if in_main_thread:
                loop.remove_signal_handler(signal.SIGINT)
                signal.signal(signal.SIGINT, previous)

    async def _run(self, requests_iter, progress, every, waiting) -> None:
        plan, result = self.plan, self.result
        result.started_at = time.time()
        self.t0 = t0 = time.perf_counter()
        await self._schedule(requests_iter, progress, every)
        # An uninterrupted timetable covers exactly scheduled/rate seconds unless the
        # scheduler itself fell behind; then the wall clock is the honest window.
        result.send_window = time.perf_counter() - t0
        if not result.interrupted:
            result.send_window = max(result.scheduled / plan.rate, result.send_window)
        pending = result.sent - result.stats.completed - result.stats.failed
        if waiting and pending > 0 and not result.interrupted:
            waiting(pending)
        await self._drain()
        result.elapsed = time.perf_counter() - t0

    async def _schedule(self, requests_iter, progress, every) -> None:
        """Hand request i on at t0 + i/rate (payload built before the wait); a finite
        ``requests_iter`` ends the timetable when it runs out."""
        plan, result, stats, t0 = self.plan, self.result, self.result.stats, self.t0
        end, next_progress = t0 + plan.duration, t0 + every
        while plan.max_requests is None or result.scheduled < plan.max_requests:
            due = t0 + result.scheduled / plan.rate
            if due >= end:
                break
            spec = next(requests_iter, None)
            if spec is None or not await self._wait_until(due):
                break
            result.scheduled += 1
            handed_on = self._hand_on((due, spec))
            if handed_on:
                result.sent += 1
            else:
                result.dropped += 1
            stats.timeline.send(due - t0, not handed_on,
                                result.sent - stats.completed - stats.failed)
            now = time.perf_counter()
            if progress and now >= next_progress:
                progress(result, now - t0)
                next_progress += every * (1 + int((now - next_progress) // every))

    async def _wait_until(self, due: float) -> bool:
        """Sleep until ``due``, never less (the loop's timers round to the millisecond: a
        shorter sleep would spin); False when the run was stopped or interrupted meanwhile."""
        delay = due - time.perf_counter()
        if delay <= 0:
            await asyncio.sleep(0)          # behind the timetable: let the workers run
        while delay > 0 and not self._ended():
            await asyncio.sleep(min(max(delay, TIMER_RESOLUTION), TICK))
            delay = due - time.perf_counter()
        return not self._ended()

    def _ended(self) -> bool:
        return self.stop.is_set() or self.result.interrupted

    def _hand_on(self, job) -> bool:
        """Give the job to a new worker, or queue it; False when both are full (dropped)."""
        if len(self.workers) < self.plan.concurrency:
            worker = asyncio.get_running_loop().create_task(self._work(job))
            self.workers.add(worker)
            worker.add_done_callback(self.workers.discard)
            return True
        if len(self.queued) < self.plan.concurrency:
            self.queued.append(job)
            return True
        return False

    async def _work(self, job) -> None:
        """Send the job, then queued ones while any wait; leave the connection open for the
        next worker if the server keeps it."""
        connection = None
        while self.idle and connection is None:
            connection = self.idle.pop()
            if not connection.reusable:
                connection = connection.close()
        while job is not None:
            connection = await self._send(job, connection)
            job = self.queued.popleft() if self.queued else None
        if connection is not None:
            self.idle.append(connection)

    async def _send(self, job, connection: Connection | None) -> Connection | None:
        """One request and its outcome; returns the connection if it can carry another."""
        (due, spec), plan = job, self.plan
        started = time.perf_counter()
        status, failure, version = None, None, None
        try:
            data = self.endpoint.encode(spec.method, spec.path, spec.body, spec.headers)
            async with asyncio.timeout(plan.timeout):
                if connection is None or not connection.reusable:
                    connection = await self.endpoint.connect()
                status, body = await connection.request(data, plan.read_versions)
            if plan.read_versions and status == 200:
                version = _model_version(body)
        except (OSError, ValueError, httptools.HttpParserError) as exc:
            failure = classify(exc)
        except asyncio.CancelledError:      # the run stopped waiting for this answer
            if connection is not None:
                connection.close()
            raise
        self.result.stats.record(spec.kind, spec.expected, status, failure,
                                 time.perf_counter() - due, started - due > plan.late_after,
                                 version, due - self.t0)
        if connection is not None and (failure or not connection.reusable):
            connection = connection.close()     # an abandoned answer must not be read later
        return connection

    async def _drain(self) -> None:
        """Let queued and in-flight requests finish (none queued if interrupted), for at
        most the request timeout (+1 s); a Ctrl-C during the wait stops it."""
        result = self.result
        if result.interrupted:
            result.cancelled += len(self.queued)
            result.sent -= len(self.queued)
            self.queued.clear()
        interrupts = self.interrupts
        deadline = time.monotonic() + self.plan.timeout + 1.0
        while self.workers and self.interrupts == interrupts and time.monotonic() < deadline:
            await asyncio.wait(set(self.workers), timeout=TICK)
        for worker in list(self.workers):
            worker.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)
        for connection in self.idle:
            connection.close()


def _model_version(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document.get("model_version") if isinstance(document, dict) else None
