"""Open-model passes with the project's own load generator, `load/run.py`, at a fixed rate.

Requests leave on a timetable whatever the server does, and latency counts from each
request's due time, so a server that falls behind shows it as latency (no coordinated
omission). Records come from a file (the seed record) so the seed-style reference, which
has no `/model` card to sample from, gets exactly the same traffic as our service.
"""
import json
import subprocess
from pathlib import Path

from bench.payloads import SEED_RECORD
from bench.servers import REPO, python


def records_file(work_dir):
    """Write the JSON-lines records file load/run.py replays; return its path."""
    path = Path(work_dir) / "records.jsonl"
    path.write_text(json.dumps(SEED_RECORD) + "\n")
    return path


def available():
    """True when the load generator is in this checkout (the stack area's `load/`)."""
    return (REPO / "load" / "run.py").exists()


def run(url, rate, duration, records, out_path, log_path):
    """Run one pass; return achieved req/s, p50/p99 in ms, errors and dropped requests."""
    argv = [python(), "load/run.py", "--url", url, "--rate", str(rate),
            "--duration", str(duration), "--mix", "valid=1", "--records", str(records),
            "--json", str(out_path), "--quiet"]
    with open(log_path, "ab") as log:
        subprocess.run(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                       timeout=duration + 120, check=False)
    if not Path(out_path).exists():
        raise RuntimeError(f"load/run.py wrote no {out_path}; see {log_path}")
    return summarise(json.loads(Path(out_path).read_text()), rate)


def summarise(report, rate):
    """Reduce load/run.py's JSON report to the figures the table shows."""
    latency = report.get("latency_ms", {})
    return {
        "target_rate": rate,
        "sent": report.get("sent", 0),
        "rps": report.get("achieved_rate"),
        "p50_ms": latency.get("p50"),
        "p99_ms": latency.get("p99"),
        "errors": report.get("errors", {}).get("count", 0),
        "dropped": report.get("dropped", 0),
        "late": report.get("late", 0),
    }
