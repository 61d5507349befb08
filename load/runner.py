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
the server dropped.

An answer can call for a follow-up request (``RequestSpec.follow_up``: the feedback for a
prediction, ``delay`` seconds after its answer). Follow-ups wait in their own queue, ordered
by due time, and a task of the same loop hands each on to the same workers when it is due:
the timetable never waits for them, and they share its pool (dropped, and counted, when it
is full). Once the timetable is done the run waits for the follow-ups still to come; Ctrl-C,
or `stop`, cancels those not yet sent (counted).

load/run.py, `load.background.BackgroundLoad` (the reliability tests and the soak, from a
thread) and bench/ all send through `run`.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
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
    """How much to send: ``rate`` req/s for ``duration`` s (None: until the requests run
    out), at most ``max_requests``."""

    rate: float
    duration: float | None
    max_requests: int | None = None
    concurrency: int = 16
    timeout: float = 10.0
    late_after: float = 0.010       # a send starting this long after its slot is "late"
    read_versions: bool = False     # parse 200 answers for model_version (costs client CPU)


@dataclass
class FollowUps:
    """Requests that answers called for (feedback), sent off the timetable."""

    scheduled: int = 0              # asked for by an answer
    sent: int = 0
    dropped: int = 0                # due while every worker was busy and the queue full
    cancelled: int = 0              # never sent: Ctrl-C or `stop` came before they were due
    kinds: set = field(default_factory=set)

    @property
    def pending(self) -> int:
        """Asked for and not yet sent, dropped or cancelled."""
        return self.scheduled - self.sent - self.dropped - self.cancelled


@dataclass
class RunResult:
    """Scheduler-side counts (the timetable's, and the follow-ups'); the per-response
    tallies are in ``stats``."""

    stats: Stats
    scheduled: int = 0
    sent: int = 0
    dropped: int = 0
    cancelled: int = 0              # queued but never sent because the run was interrupted
    send_window: float = 0.0        # seconds the timetable covered
    elapsed: float = 0.0            # including the wait for the last responses
    interrupted: bool = False
    started_at: float = 0.0         # time.time() when the timetable started
    follow_ups: FollowUps = field(default_factory=FollowUps)


def run(base_url: str, requests_iter: Iterator[RequestSpec], plan: Schedule,
        progress: Callable[[RunResult, float], None] | None = None,
        progress_every: float = 1.0,
        waiting: Callable[[int, int], None] | None = None,
        stop: threading.Event | None = None,
        result: RunResult | None = None) -> RunResult:
    """Send on the timetable; Ctrl-C (SIGINT, in the main thread) ends early with partial
    results.

    `waiting(n, f)` is called once the timetable is done while n responses and f follow-ups
    are still due; a Ctrl-C during that wait stops it (those requests are reported as
    unfinished, those follow-ups as cancelled). Setting `stop` ends the timetable early
    (in-flight requests still finish, follow-ups not yet sent are cancelled); pass `result`
    to watch the counts from another thread while it runs.
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
        self.follow_ups: list = []              # heap of (due, n, spec) not yet handed on
        self.follow_up_order = itertools.count()    # ties of due times keep their order
        self.follow_up_added = asyncio.Event()
        self.taking_follow_ups = True
        self.last_hand_on = 0.0                 # perf_counter() of the last request handed on

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
        sender = asyncio.get_running_loop().create_task(self._send_follow_ups())
        await self._schedule(requests_iter, progress, every)
        # An uninterrupted timetable covers exactly scheduled/rate seconds unless the
        # scheduler itself fell behind; then the wall clock is the honest window.
        result.send_window = time.perf_counter() - t0
        if not result.interrupted:
            result.send_window = max(result.scheduled / plan.rate, result.send_window)
        pending = result.sent - result.stats.completed - result.stats.failed
        if waiting and (pending > 0 or result.follow_ups.pending) and not self._ended():
            waiting(pending, result.follow_ups.pending)
        await self._drain(sender)
        result.elapsed = time.perf_counter() - t0

    async def _schedule(self, requests_iter, progress, every) -> None:
        """Hand request i on at t0 + i/rate (payload built before the wait); a finite
        ``requests_iter`` ends the timetable when it runs out."""
        plan, result, stats, t0 = self.plan, self.result, self.result.stats, self.t0
        end = t0 + plan.duration if plan.duration is not None else float("inf")
        next_progress = t0 + every
        while plan.max_requests is None or result.scheduled < plan.max_requests:
            due = t0 + result.scheduled / plan.rate
            if due >= end:
                break
            spec = next(requests_iter, None)
            if spec is None or not await self._wait_until(due):
                break
            result.scheduled += 1
            handed_on = self._hand_on((due, spec))
            self.last_hand_on = time.perf_counter()
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

    def _add_follow_up(self, asked) -> None:
        """Queue the follow-up an answer asked for, ``(delay, spec)``, due ``delay`` s from
        now (cancelled at once when the run is ending)."""
        if asked is None:
            return
        delay, spec = asked
        follow_ups = self.result.follow_ups
        follow_ups.scheduled += 1
        follow_ups.kinds.add(spec.kind)
        if not self.taking_follow_ups:
            follow_ups.cancelled += 1
            return
        due = time.perf_counter() + max(delay, 0.0)
        heapq.heappush(self.follow_ups, (due, next(self.follow_up_order), spec))
        self.follow_up_added.set()

    async def _send_follow_ups(self) -> None:
        """Hand each follow-up on when it is due, as the scheduler does requests."""
        follow_ups, stats = self.result.follow_ups, self.result.stats
        while True:
            self.follow_up_added.clear()
            delay = self.follow_ups[0][0] - time.perf_counter() if self.follow_ups else None
            if delay is None or delay > 0:
                # woken early by a new follow-up, which may be due sooner
                try:
                    async with asyncio.timeout(None if delay is None
                                               else max(delay, TIMER_RESOLUTION)):
                        await self.follow_up_added.wait()
                except TimeoutError:
                    pass
                continue
            due, _, spec = heapq.heappop(self.follow_ups)
            handed_on = self._hand_on((due, spec))
            self.last_hand_on = time.perf_counter()
            if handed_on:
                follow_ups.sent += 1
            else:
                follow_ups.dropped += 1
            stats.timeline.follow_up(due - self.t0, not handed_on)

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
        status, failure, version, body = None, None, None, b""
        want_body = plan.read_versions or spec.follow_up is not None
        try:
            data = self.endpoint.encode(spec.method, spec.path, spec.body, spec.headers)
            async with asyncio.timeout(plan.timeout):
                if connection is None or not connection.reusable:
                    connection = await self.endpoint.connect()
                status, body = await connection.request(data, want_body)
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
        if spec.follow_up is not None:
            self._add_follow_up(spec.follow_up(status, body))
        if connection is not None and (failure or not connection.reusable):
            connection = connection.close()     # an abandoned answer must not be read later
        return connection

    async def _drain(self, sender: asyncio.Task) -> None:
        """Send the follow-ups still due and let queued and in-flight requests finish, each
        for at most the request timeout (+1 s) after it was handed on; if interrupted or
        stopped, none queued and no follow-up is sent; a Ctrl-C during the wait stops it."""
        result = self.result
        if result.interrupted:
            result.cancelled += len(self.queued)
            result.sent -= len(self.queued)
            self.queued.clear()
        if self._ended():
            self._cancel_follow_ups()
        interrupts = self.interrupts
        while self.interrupts == interrupts:
            if self.stop.is_set():
                self._cancel_follow_ups()
            if self.follow_ups:             # the sender hands them on as they fall due
                await asyncio.sleep(TICK)
                continue
            if not self.workers or \
                    time.perf_counter() > self.last_hand_on + self.plan.timeout + 1.0:
                break
            await asyncio.wait(set(self.workers), timeout=TICK)
        self._cancel_follow_ups()
        sender.cancel()
        for worker in list(self.workers):
            worker.cancel()
        await asyncio.gather(sender, *self.workers, return_exceptions=True)
        for connection in self.idle:
            connection.close()

    def _cancel_follow_ups(self) -> None:
        """No more follow-ups: those waiting, and those answers still ask for, are cancelled."""
        self.taking_follow_ups = False
        self.result.follow_ups.cancelled += len(self.follow_ups)
        self.follow_ups.clear()


def _model_version(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document.get("model_version") if isinstance(document, dict) else None
