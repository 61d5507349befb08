"""Open-model load generator for the accident API.

    python load/run.py --rate 50 --duration 60 [--mix ...] [--drift vma=40] [--json out.json]
                       [--html report.html]

Exit status: 0 all gates passed, 1 a gate (--max-error-rate, --max-p99) failed,
2 bad arguments or the API could not be prepared for (GET /model failed), 130 interrupted
(Ctrl-C; a partial report is still printed, also while waiting for the last responses; an
interrupt during the start-up GET /model prints one line, since nothing was sent).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

if __package__ in (None, ""):               # `python load/run.py` from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from load import html_report  # noqa: E402
from load import report as reporting  # noqa: E402
from load.mix import DEFAULT_MIX, KindSequence, parse_drift, parse_mix  # noqa: E402
from load.payloads import RequestFactory  # noqa: E402
from load.records import RecordSampler, model_card, read_records  # noqa: E402
from load.runner import Schedule, run  # noqa: E402


def _positive(kind):
    def convert(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return convert


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (every bound has a default, so a bare run is short)."""
    p = argparse.ArgumentParser(prog="python load/run.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000", help="API base URL")
    p.add_argument("--rate", type=_positive(float), default=20.0, help="target req/s")
    p.add_argument("--duration", type=_positive(float), default=30.0, help="seconds to send")
    p.add_argument("--max-requests", type=_positive(int), help="stop after this many sends")
    p.add_argument("--concurrency", type=_positive(int), default=256,
                   help="most requests in flight at once, and as many again queued before a "
                        "send is dropped (default 256: a stall of the server shows as "
                        "latency, not as drops; keep-alive connections are opened only as "
                        "needed)")
    p.add_argument("--mix", default=DEFAULT_MIX, help=f"kind=weight,... (default {DEFAULT_MIX})")
    p.add_argument("--drift", default="", help="FEATURE=SHIFT,... shift features (drift demo)")
    p.add_argument("--records", help="JSON-lines file of records instead of card-drawn ones")
    p.add_argument("--batch-size", type=_positive(int), default=10, help="records per batch")
    p.add_argument("--max-batch-size", type=_positive(int), default=1000,
                   help="the API's MAX_BATCH_SIZE: the invalid kind's batch_over_cap sends one "
                        "record more and expects 413")
    p.add_argument("--timeout", type=_positive(float), default=10.0, help="per request, s")
    p.add_argument("--late-ms", type=float, default=10.0,
                   help="a send starting this long after its slot counts as late")
    p.add_argument("--seed", type=int, default=0, help="random seed for record values")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.add_argument("--html", metavar="FILE",
                   help="also write the report as one self-contained HTML file (charts over "
                        "time, the summary tables, the parameters; opens offline)")
    p.add_argument("--max-error-rate", type=float, help="fail (exit 1) above this error share")
    p.add_argument("--max-p99", type=float, metavar="MS", help="fail (exit 1) above this p99")
    p.add_argument("--progress-every", type=_positive(float), default=1.0, help="seconds")
    p.add_argument("--quiet", action="store_true", help="no live progress line")
    p.add_argument("--api-key-file", metavar="FILE",
                   help="send 'Authorization: Bearer KEY' with the first key of FILE (the API's "
                        "API_KEYS_FILE format: one key a line, # comments); default: the "
                        "LOAD_API_KEY environment variable, else no key")
    args = p.parse_args(argv)
    try:
        args.api_key = (read_api_key(args.api_key_file) if args.api_key_file
                        else os.environ.get("LOAD_API_KEY") or None)
    except ValueError as exc:
        p.error(str(exc))           # exit 2; the message names the file, never the key
    return args


def read_api_key(path: str) -> str:
    """The first key of an API_KEYS_FILE-format file (so the API's secret file can be reused)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"--api-key-file {path}: cannot be read ({exc.strerror})") from None
    for line in lines:
        key = line.strip()
        if key and not key.startswith("#"):
            return key
    raise ValueError(f"--api-key-file {path}: no key in it (one key a line, # comments)")


def _requests(sequence: KindSequence, factory: RequestFactory):
    while True:
        yield factory.build(sequence.next())


def _prepare(args) -> tuple[KindSequence, RequestFactory]:
    """Parse the mix and drift, read the model card (one GET /model?include=reference) and build payloads."""
    sequence = KindSequence(parse_mix(args.mix))
    drift = parse_drift(args.drift)
    # the reference bins let records follow the training distribution (PSI ~ 0 undrifted)
    response = requests.get(args.url.rstrip("/") + "/model", params={"include": "reference"},
                            timeout=args.timeout)
    response.raise_for_status()
    records = read_records(args.records) if args.records else None
    sampler = RecordSampler(model_card(response.json()), random.Random(args.seed),
                            drift, records)
    if records is None and sampler.without_reference:
        # uniform values do not follow the training data: the drift panels and the
        # ModelFeatureDrift alert would react to the load itself, so say so loudly
        print(f"load: WARNING: GET /model?include=reference gave no reference bins for "
              f"{len(sampler.without_reference)} feature(s) "
              f"({', '.join(sampler.without_reference)}): their values are drawn uniformly, "
              f"not like the training data, so expect drift (PSI) on them", file=sys.stderr)
    auth = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    return sequence, RequestFactory(sampler, args.batch_size, auth, args.max_batch_size)


def main(argv: list[str] | None = None) -> int:
    """Run the load, print the report, return the exit status."""
    args = parse_args(argv)
    try:
        sequence, factory = _prepare(args)
    except (ValueError, OSError, requests.RequestException) as exc:
        print(f"load: cannot start: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("load: interrupted while preparing (GET /model): nothing was sent, no report",
              file=sys.stderr)
        return 130
    plan = Schedule(args.rate, args.duration, args.max_requests, args.concurrency,
                    args.timeout, args.late_ms / 1000.0)
    tty = sys.stderr.isatty()

    def progress(result, elapsed):
        line = reporting.progress_line(result, elapsed, plan.rate)
        print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr,
              flush=True)

    def waiting(pending):
        print(("\n" if tty else "") + f"load: timetable done; waiting up to "
              f"{plan.timeout + 1:g}s for {pending} response(s) (Ctrl-C: stop waiting, "
              f"report now)", file=sys.stderr, flush=True)

    result = run(args.url, _requests(sequence, factory), plan,
                 None if args.quiet else progress, args.progress_every,
                 None if args.quiet else waiting)
    if tty and not args.quiet:
        print(file=sys.stderr)
    settings = {"url": args.url, "mix": parse_mix(args.mix), "drift": parse_drift(args.drift),
                "records": args.records, "batch_size": args.batch_size, "seed": args.seed,
                "api_key": bool(args.api_key),
                "setup_requests": {"GET /model?include=reference": 1}}
    report = reporting.build(result, plan, settings, args.max_error_rate, args.max_p99)
    print(reporting.render(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.html:
        Path(args.html).write_text(html_report.render(report), encoding="utf-8")
    if result.interrupted:
        return 130
    return 0 if reporting.passed(report) else 1


if __name__ == "__main__":
    sys.exit(main())
