"""A light open-model client: asyncio, one raw HTTP/1.1 request per connection, no threads.

`load/run.py` (requests + a thread pool) costs about a millisecond of CPU per request; on a
2-core machine it cannot send 1,000 req/s even to the constant-returning ceiling app, so it
measures itself more than the server there. This client sends the same open-model
timetable (request i due at t0 + i/rate, latency counted from the due time, so a slow server
shows as latency rather than a lower rate) for a fraction of that CPU. `run.py` reports both.
"""
import asyncio
import time


def request_bytes(path, body, port):
    """A complete POST with `Connection: close` (gunicorn's sync workers close anyway)."""
    payload = body.encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode() + payload


async def _one(port, payload, due, latencies, outcome, timeout):
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port),
                                                timeout)
        writer.write(payload)
        status_line = await asyncio.wait_for(reader.readline(), timeout)
        await asyncio.wait_for(reader.read(), timeout)  # to EOF: the whole response
        latencies.append(time.perf_counter() - due)
        writer.close()
        ok = status_line.split(b" ", 2)[1:2] == [b"200"]
        outcome["ok" if ok else "bad_status"] += 1
    except (OSError, asyncio.TimeoutError, IndexError):
        outcome["failed"] += 1


async def _run(port, payload, rate, duration, max_in_flight, timeout):
    latencies, outcome = [], {"ok": 0, "bad_status": 0, "failed": 0, "dropped": 0}
    in_flight = set()
    t0 = time.perf_counter()
    total = int(rate * duration)
    for i in range(total):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) >= max_in_flight:
            outcome["dropped"] += 1
            continue
        task = asyncio.create_task(_one(port, payload, due, latencies, outcome, timeout))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    send_window = max(time.perf_counter() - t0, duration)
    if in_flight:
        await asyncio.wait(in_flight, timeout=timeout + 1)
    return latencies, outcome, total, send_window


def run(port, path, body, rate, duration, max_in_flight=256, timeout=10.0):
    """One pass; returns achieved req/s (answered), p50/p99 in ms, errors and drops."""
    payload = request_bytes(path, body, port)
    latencies, outcome, total, window = asyncio.run(
        _run(port, payload, rate, duration, max_in_flight, timeout))
    latencies.sort()

    def pct(q):
        return 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))] \
            if latencies else None
    return {"target_rate": rate, "rps": (total - outcome["dropped"]) / window,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "errors": outcome["bad_status"] + outcome["failed"], "dropped": outcome["dropped"]}
