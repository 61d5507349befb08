"""The open-model pass in-process: the load engine (load.runner, the one load/run.py sends
with) posting one fixed body, without the command line around it.

Beside bench/openload.py (the same timetable through `python load/run.py`, records, mix
and report included) it shows what the command line's own work costs the measurement: the
two passes share the engine, so their figures should agree.
"""
from itertools import repeat

from load.payloads import JSON, RequestSpec
from load.runner import Schedule, run as run_engine


def run(port, path, body, rate, duration, concurrency=256, timeout=10.0):
    """One pass at `rate` req/s; returns achieved req/s (sent), p50/p99 in ms, errors and
    dropped sends."""
    spec = RequestSpec("valid", "POST", path, frozenset({200}), body.encode(), dict(JSON))
    result = run_engine(f"http://127.0.0.1:{port}", repeat(spec),
                        Schedule(rate, duration, concurrency=concurrency, timeout=timeout))
    return summarise(result, rate)


def summarise(result, rate):
    """The figures the benchmark table shows, from the engine's RunResult."""
    histogram = result.stats.histogram

    def ms(q):
        value = histogram.percentile(q)
        return None if value is None else 1000 * value
    return {"target_rate": rate, "sent": result.sent,
            "rps": result.sent / result.send_window if result.send_window else 0.0,
            "p50_ms": ms(50), "p99_ms": ms(99), "errors": result.stats.errors,
            "dropped": result.dropped, "late": result.stats.late}
