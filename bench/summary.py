"""Medians over rounds per server, and the performance targets checked against them."""
from statistics import median

# (pass, field) pairs whose median over rounds the table shows.
FIELDS = (("wrk", "rps"), ("wrk", "p50_ms"), ("wrk", "p99_ms"), ("wrk", "errors"),
          ("wrk", "cpu_ms_per_request"),
          ("open", "rps"), ("open", "p50_ms"), ("open", "p99_ms"), ("open", "errors"),
          ("open", "dropped"), ("open", "target_rate"),
          ("openloop", "rps"), ("openloop", "p50_ms"), ("openloop", "p99_ms"),
          ("openloop", "errors"), ("openloop", "dropped"), ("openloop", "target_rate"),
          ("batch", "rows_per_s"),
          ("batch", "p99_ms"), ("memory", "pss_mb"), ("memory", "anon_pss_mb"),
          ("memory", "uss_mb"), ("memory", "worker_rss_mb"))


def summarise(rounds):
    """{key: {"pass.field": median, ..., "wrk.rps_best": max}} from the list of round results."""
    per_server = {}
    for round_result in rounds:
        for key, passes in round_result.items():
            per_server.setdefault(key, []).append(passes)
    summary = {}
    for key, results in per_server.items():
        row = {}
        for pass_name, name in FIELDS:
            values = [r[pass_name][name] for r in results
                      if r.get(pass_name) and r[pass_name].get(name) is not None]
            row[f"{pass_name}.{name}"] = median(values) if values else None
        rps = [r["wrk"]["rps"] for r in results if r.get("wrk")]
        row["wrk.rps_best"] = max(rps) if rps else None
        row["rounds"] = len(results)
        summary[key] = row
    return summary


def _get(summary, key, field):
    return summary.get(key, {}).get(field)


def _ratio(a, b):
    return a / b if a is not None and b else None


def targets(summary, rate):
    """Each target as {"target", "value", "limit", "status"} (PASS/FAIL/n/a)."""
    c_rps = _get(summary, "c", "wrk.rps")
    checks = [
        ("throughput >= 50% of the ceiling (c / d, wrk)",
         _ratio(c_rps, _get(summary, "d", "wrk.rps")), 0.5, ">="),
        ("throughput >= 30x the seed's best round (c / max a, wrk)",
         _ratio(c_rps, _get(summary, "a", "wrk.rps_best")), 30.0, ">="),
        (f"p99 <= 5 ms at {rate:g} req/s open-model, asyncio client (c)",
         _open_p99(summary, rate, "openloop"), 5.0, "<="),
        (f"p99 <= 5 ms at {rate:g} req/s open-model, load/run.py (c)",
         _open_p99(summary, rate, "open"), 5.0, "<="),
        ("batch of 1,000 records >= 20,000 rows/s (c)",
         _get(summary, "c", "batch.rows_per_s"), 20000.0, ">="),
        ("server PSS (master + 2 workers) under load <= 150 MB (c)",
         _get(summary, "c", "memory.pss_mb"), 150.0, "<="),
        ("throughput with the prediction log >= 85% of without (c / f, wrk)",
         _ratio(c_rps, _get(summary, "f", "wrk.rps")), 0.85, ">="),
    ]
    return [_verdict(*check) for check in checks]


def _open_p99(summary, rate, client):
    """c's open-model p99 from `client`'s pass; None when it cannot judge (rate < 1000).

    A pass with errors, or one that could not keep the rate, did not meet the target.
    """
    p99 = _get(summary, "c", f"{client}.p99_ms")
    achieved = _get(summary, "c", f"{client}.rps")
    if p99 is None or rate < 1000:
        return None
    if _get(summary, "c", f"{client}.errors"):
        return float("inf")
    # A pass that could not keep the rate did not test the target: count it as a miss.
    return p99 if achieved and achieved >= 0.95 * rate else float("inf")


def _verdict(target, value, limit, op):
    if value is None:
        status = "n/a"
    else:
        status = "PASS" if (value >= limit if op == ">=" else value <= limit) else "FAIL"
    return {"target": target, "value": value, "limit": limit, "op": op, "status": status}


def cpu_view(summary):
    """The throughput targets re-read from CPU cost per request (wrk pass, /proc CPU time).

    On a machine shared with other work, req/s and latency move with the neighbours; the
    server's own CPU milliseconds per request move much less. Throughput ratios at saturation
    are (nearly) inverse CPU-cost ratios, so these lines say what the targets would read on a
    quiet machine. They are shown beside the measured verdicts, never instead of them.
    """
    cost = {key: _get(summary, key, "wrk.cpu_ms_per_request") for key in "abcd"}
    checks = [
        ("CPU: ceiling cost / our cost (d / c) >= 0.5", _ratio(cost["d"], cost["c"]), 0.5, ">="),
        ("CPU: seed cost / our cost (a / c) >= 30", _ratio(cost["a"], cost["c"]), 30.0, ">="),
    ]
    return [_verdict(*check) for check in checks]
