"""Open-model load generator for the accident API.

    python load/run.py --rate 50 --duration 60 [--mix ...] [--drift vma=40] [--json out.json]
                       [--html report.html]
    python load/run.py --replay DIR [--year Y] [--feedback SHARE,DELAY] [--concept-drift]
                       [--answers answers.jsonl] ...

--replay sends the accidents of a raw BAAC directory (the real files or `accident-api data
synth` output), in order, once through; --duration or --max-requests, when given, bound the
run instead, looping over the accidents as often as they ask.

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
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):               # `python load/run.py` from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from load import html_report  # noqa: E402
from load import report as reporting  # noqa: E402
from load.feedback import ReplayTraffic, parse_feedback  # noqa: E402
from load.mix import DEFAULT_MIX, KindSequence, parse_drift, parse_mix  # noqa: E402
from load.payloads import RequestFactory  # noqa: E402
from load.records import RecordSampler, model_card, read_records  # noqa: E402
from load.replay import CONCEPT_DRIFT_SEGMENT, detect_year, read_accidents  # noqa: E402
from load.runner import Schedule, run  # noqa: E402

DEFAULT_DURATION = 30.0     # s, when neither --duration nor --max-requests bounds a plain run


def _positive(kind):
    def convert(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return convert


def _year(text: str) -> int | None:
    return int(text) if text else None     # '' (compose's unset LOAD_REPLAY_YEAR): detect it


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (every bound has a default, so a bare run is short)."""
    p = argparse.ArgumentParser(prog="python load/run.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000", help="API base URL")
    p.add_argument("--rate", type=_positive(float), default=20.0, help="target req/s")
    p.add_argument("--duration", type=_positive(float),
                   help=f"seconds to send (default {DEFAULT_DURATION:g}; with --replay: one "
                        f"pass through the accidents, however long it takes)")
    p.add_argument("--max-requests", type=_positive(int), help="stop after this many sends")
    p.add_argument("--concurrency", type=_positive(int), default=256,
                   help="most requests in flight at once, and as many again queued before a "
                        "send is dropped (default 256: a stall of the server shows as "
                        "latency, not as drops; keep-alive connections are opened only as "
                        "needed)")
    p.add_argument("--mix", help=f"kind=weight,... (default {DEFAULT_MIX}; with --replay "
                                 f"valid=1)")
    p.add_argument("--drift", default="", help="FEATURE=SHIFT,... shift features (drift demo)")
    p.add_argument("--records", help="JSON-lines file of records instead of card-drawn ones")
    p.add_argument("--replay", metavar="DIR", default="",
                   help="send the accidents of this raw BAAC directory as the valid "
                        "requests, in Num_Acc order, each one's true outcome kept beside it")
    p.add_argument("--year", type=_year, help="the BAAC year to read from --replay DIR "
                                              "(default: the one year whose files are there)")
    p.add_argument("--feedback", metavar="SHARE,DELAY", default="",
                   help="POST /feedback the true outcome of SHARE (0-1, a seeded choice) of "
                        "the answered replayed predictions, DELAY s after each answer "
                        "(0: right away)")
    p.add_argument("--concept-drift", nargs="?", const="on", default="off",
                   choices=("on", "off"),
                   help=f"flip the true outcome of the replayed accidents where "
                        f"{CONCEPT_DRIFT_SEGMENT} (a known speed limit of 80 km/h or more), "
                        f"inputs unchanged: realised quality falls, PSI and the estimate "
                        f"stay calm")
    p.add_argument("--answers", metavar="FILE",
                   help="write one JSON line per answered replayed prediction (accident, "
                        "prediction_id, prediction, probability, true outcome, feedback "
                        "status)")
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
        args.feedback = parse_feedback(args.feedback)
    except ValueError as exc:
        p.error(str(exc))           # exit 2; the message names the file, never the key
    args.concept_drift = args.concept_drift == "on"
    needs_replay = [name for name, given in (("--feedback", args.feedback is not None),
                                             ("--concept-drift", args.concept_drift),
                                             ("--answers", args.answers),
                                             ("--year", args.year is not None)) if given]
    if needs_replay and not args.replay:
        p.error(f"{', '.join(needs_replay)} need(s) --replay DIR: the true outcomes come "
                f"from the replayed accidents")
    if args.replay and args.records:
        p.error("--replay and --records both give the valid requests' records: choose one")
    if not args.mix:                # '' (compose's unset LOAD_MIX): the default
        args.mix = "valid=1" if args.replay else DEFAULT_MIX
    # a replay runs once through its accidents unless a bound asks for more (it then loops)
    args.loop = args.duration is not None or args.max_requests is not None
    if args.duration is None and not args.replay:
        args.duration = DEFAULT_DURATION
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
    while (spec := factory.build(sequence.next())) is not None:
        yield spec


def _replay(args, sampler: RecordSampler, auth: dict) -> ReplayTraffic | None:
    """The --replay traffic: the directory's accidents (drift applied to their inputs)."""
    if not args.replay:
        return None
    year = args.year or detect_year(args.replay)
    accidents = [replace(accident, record=sampler.shifted(accident.record)) if sampler.drift
                 else accident
                 for accident in read_accidents(args.replay, year, args.concept_drift)]
    return ReplayTraffic(accidents, loop=args.loop, feedback=args.feedback, seed=args.seed,
                         headers=auth, keep_answers=bool(args.answers),
                         source={"dir": args.replay, "year": year},
                         concept_drift=args.concept_drift)


def _prepare(args) -> tuple[KindSequence, RequestFactory]:
    """Parse the mix and drift, read the model card (one GET /model?include=reference), read
    the replayed accidents and build payloads."""
    sequence = KindSequence(parse_mix(args.mix))
    drift = parse_drift(args.drift)
    # the reference bins let records follow the training distribution (PSI ~ 0 undrifted)
    response = requests.get(args.url.rstrip("/") + "/model", params={"include": "reference"},
                            timeout=args.timeout)
    response.raise_for_status()
    records = read_records(args.records) if args.records else None
    sampler = RecordSampler(model_card(response.json()), random.Random(args.seed),
                            drift, records)
    drawn = not args.replay or any(share > 0 for kind, share in sequence.shares.items()
                                   if kind != "valid")
    if records is None and drawn and sampler.without_reference:
        # uniform values do not follow the training data: the drift panels and the
        # ModelFeatureDrift alert would react to the load itself, so say so loudly
        print(f"load: WARNING: GET /model?include=reference gave no reference bins for "
              f"{len(sampler.without_reference)} feature(s) "
              f"({', '.join(sampler.without_reference)}): their values are drawn uniformly, "
              f"not like the training data, so expect drift (PSI) on them", file=sys.stderr)
    auth = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    return sequence, RequestFactory(sampler, args.batch_size, auth, args.max_batch_size,
                                    _replay(args, sampler, auth))


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

    def waiting(pending, follow_ups):
        labels = (f"; sending {follow_ups} follow-up request(s) (feedback) as they fall due"
                  if follow_ups else "")
        print(("\n" if tty else "") + f"load: timetable done{labels}; waiting up to "
              f"{plan.timeout + 1:g}s for {pending} response(s) (Ctrl-C: stop waiting, "
              f"report now)", file=sys.stderr, flush=True)

    result = run(args.url, _requests(sequence, factory), plan,
                 None if args.quiet else progress, args.progress_every,
                 None if args.quiet else waiting)
    if tty and not args.quiet:
        print(file=sys.stderr)
    settings = {"url": args.url, "mix": parse_mix(args.mix), "drift": parse_drift(args.drift),
                "records": args.records, "replay": args.replay or None, "year": args.year,
                "feedback": ",".join(f"{v:g}" for v in args.feedback) if args.feedback
                else None, "concept_drift": args.concept_drift, "answers": args.answers,
                "batch_size": args.batch_size, "seed": args.seed,
                "api_key": bool(args.api_key),
                "setup_requests": {"GET /model?include=reference": 1}}
    report = reporting.build(result, plan, settings, args.max_error_rate, args.max_p99)
    replay = factory.replay
    if replay is not None:
        report.update(replay.report(result.stats.snapshot(), result.follow_ups))
        if args.answers:
            replay.write_answers(args.answers)
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
