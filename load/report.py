"""The run's report: a JSON-able dict, its text rendering, the live progress line, gates."""
from __future__ import annotations

from datetime import datetime, timezone

from load.runner import RunResult, Schedule
from load.stats import ERROR_DEFINITION

PERCENTILES = ("p50", "p90", "p95", "p99", "p99.9", "max")
GATE_DEFINITION = ("; rate = (errors + dropped + unfinished) / scheduled, follow-up requests "
                   "(feedback) included")


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def build(result: RunResult, plan: Schedule, settings: dict,
          max_error_rate: float | None, max_p99_ms: float | None) -> dict:
    """Everything the run measured, plus the verdict of each gate that was set."""
    snap = result.stats.snapshot()
    follow_ups = result.follow_ups
    attempted = snap["completed"] + snap["failed"]
    unfinished = result.sent + follow_ups.sent - attempted
    # A send the pool had no room for (dropped) or that never got an answer before the
    # end (unfinished) is load the server did not serve: counting only answered requests
    # let a run that shed most of its load pass --max-error-rate 0. Cancelled sends (the
    # user pressed Ctrl-C) are neither; the run exits 130 anyway.
    gated = snap["errors"] + result.dropped + follow_ups.dropped + unfinished
    scheduled = result.scheduled + follow_ups.scheduled
    error_rate = gated / scheduled if scheduled else 0.0
    latency = {name: _ms(snap[name]) for name in PERCENTILES + ("min",)}
    report = {
        "settings": {**settings, "rate": plan.rate, "duration_s": plan.duration,
                     "max_requests": plan.max_requests, "concurrency": plan.concurrency,
                     "timeout_s": plan.timeout, "late_ms": _ms(plan.late_after)},
        "started_at": (datetime.fromtimestamp(result.started_at, timezone.utc)
                       .isoformat(timespec="seconds") if result.started_at else None),
        "interrupted": result.interrupted,
        "target_rate": plan.rate,
        "achieved_rate": round(result.sent / result.send_window, 3) if result.send_window else 0.0,
        "send_window_s": round(result.send_window, 3),
        "elapsed_s": round(result.elapsed, 3),
        "scheduled": result.scheduled, "sent": result.sent, "dropped": result.dropped,
        "cancelled": result.cancelled, "late": snap["late"],
        "completed": snap["completed"], "failed": snap["failed"],
        "unfinished": unfinished,
        "follow_ups": {"scheduled": follow_ups.scheduled, "sent": follow_ups.sent,
                       "dropped": follow_ups.dropped, "cancelled": follow_ups.cancelled,
                       "kinds": sorted(follow_ups.kinds)},
        "by_status": dict(sorted(snap["by_status"].items())),
        "by_kind": {kind: dict(sorted(c.items())) for kind, c in sorted(snap["by_kind"].items())},
        "errors": {"count": snap["errors"], "gated": gated, "rate": round(error_rate, 6),
                   "definition": ERROR_DEFINITION + GATE_DEFINITION,
                   "unexpected": snap["unexpected"]},
        "latency_ms": latency,
        "gates": {},
        "timeline": result.stats.timeline.to_dict(result.send_window),
    }
    if max_error_rate is not None:
        report["gates"]["max_error_rate"] = {
            "limit": max_error_rate, "actual": report["errors"]["rate"],
            "passed": error_rate <= max_error_rate}
    if max_p99_ms is not None:
        p99 = latency["p99"]
        report["gates"]["max_p99_ms"] = {
            "limit": max_p99_ms, "actual": p99,
            "passed": p99 is not None and p99 <= max_p99_ms}
    return report


def passed(report: dict) -> bool:
    """True when every gate that was set passed."""
    return all(gate["passed"] for gate in report["gates"].values())


def progress_line(result: RunResult, elapsed: float, rate: float) -> str:
    """One line: time, sends and achieved rate, responses, errors, drops, p50/p99 so far."""
    stats = result.stats
    hist = stats.histogram
    p50, p99 = _ms(hist.percentile(50)), _ms(hist.percentile(99))
    follow_ups = result.follow_ups
    extra = (f"  follow-ups {follow_ups.sent} sent, {follow_ups.pending} to come"
             if follow_ups.scheduled else "")
    return (f"[{elapsed:6.1f}s] sent {result.sent} ({result.sent / elapsed:.1f}/s of "
            f"{rate:g}/s)  done {stats.completed}  errors {stats.errors}  failed {stats.failed}"
            f"  dropped {result.dropped}  late {stats.late}  p50 {_fmt(p50)}  p99 {_fmt(p99)}"
            + extra)


def _follow_up_lines(report: dict) -> list[str]:
    """The follow-ups (feedback) an answer asked for, and the replay and feedback sections
    load/run.py adds (load.feedback), when there are any."""
    lines = []
    follow = report["follow_ups"]
    if follow["scheduled"]:
        lines.append(f"follow-ups ({', '.join(follow['kinds'])}): asked for "
                     f"{follow['scheduled']}  sent {follow['sent']}  dropped "
                     f"{follow['dropped']}  cancelled {follow['cancelled']}")
    replay = report.get("replay")
    if replay:
        drift = replay["concept_drift"]
        lines.append(
            f"replay {replay['dir']} (BAAC {replay['year']}): {replay['accidents']} accidents "
            f"({replay['severe']} severe), {replay['passes']} pass(es); predictions sent "
            f"{replay['predictions']['requests']}, answered with an id "
            f"{replay['predictions']['answered']}"
            + (f"; concept drift: outcome flipped where {drift['segment']} "
               f"({drift['accidents']} accidents)" if drift else ""))
    feedback = report.get("feedback")
    if feedback:
        cells = feedback["confusion"]
        lines.append(
            f"feedback {feedback['share']:g} of the answers, {feedback['delay_s']:g}s after "
            f"each: chosen {feedback['chosen']}  sent {feedback['sent']}  answered as "
            f"expected {feedback['as_expected']}  by status: "
            + (", ".join(f"{k}={v}" for k, v in feedback["by_status"].items()) or "-")
            + f"; recorded tp={cells['tp']} fp={cells['fp']} tn={cells['tn']} "
              f"fn={cells['fn']}")
    return lines


def _fmt(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.1f}ms"


def render(report: dict) -> str:
    """Human-readable summary of a report."""
    lines = [
        "=== load report" + (" (INTERRUPTED: partial)" if report["interrupted"] else "") + " ===",
        f"target {report['target_rate']:g} req/s, achieved {report['achieved_rate']:g} req/s "
        f"over {report['send_window_s']}s (elapsed {report['elapsed_s']}s)",
        f"scheduled {report['scheduled']}  sent {report['sent']}  dropped {report['dropped']}"
        f"  late {report['late']}  cancelled {report['cancelled']}  unfinished "
        f"{report['unfinished']}",
        f"responses {report['completed']}  transport failures {report['failed']}",
        *_follow_up_lines(report),
        "by status: " + ", ".join(f"{k}={v}" for k, v in report["by_status"].items()),
        "by kind:",
    ]
    for kind, counts in report["by_kind"].items():
        lines.append(f"  {kind:<28} " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    errors = report["errors"]
    lines.append(f"errors {errors['count']}, with dropped and unfinished {errors['gated']} "
                 f"({errors['rate']:.2%}): {errors['definition']}")
    for what, count in sorted(errors["unexpected"].items()):
        lines.append(f"  unexpected {what}: {count}")
    lines.append("latency (from intended send time): " + "  ".join(
        f"{name} {_fmt(report['latency_ms'][name])}" for name in PERCENTILES))
    for name, gate in report["gates"].items():
        verdict = "PASS" if gate["passed"] else "FAIL"
        lines.append(f"gate {name}: {verdict} (actual {gate['actual']}, limit {gate['limit']})")
    return "\n".join(lines)
