"""The load engine (scheduler, connections, failures, timeline) and the CLI against a fake
API and raw TCP servers on 127.0.0.1."""
import json
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from load import run as cli
from load.http_client import Endpoint
from load.payloads import RequestSpec
from load.report import build
from load.runner import FollowUps, RunResult, Schedule, run
from load.stats import Stats

ROOT = Path(__file__).resolve().parent.parent


def _specs():
    while True:
        yield RequestSpec("valid", "POST", "/predict", frozenset({200}),
                          b'{"lum": 1, "vma": 50, "lat": 45.0}',
                          {"Content-Type": "application/json"})


def test_sends_on_the_timetable(fake_api):
    started = time.perf_counter()
    result = run(fake_api.url, _specs(), Schedule(rate=50, duration=1.0, concurrency=4))
    assert 0.95 <= time.perf_counter() - started < 3.0
    assert result.scheduled == result.sent == 50 and result.dropped == 0
    assert result.stats.by_status == {"200": 50} and fake_api.counts == {200: 50}
    # the timetable's length, or longer only if this (loaded) machine made the client lag
    assert 1.0 <= result.send_window < 1.5


def test_max_requests_bounds_the_run(fake_api):
    result = run(fake_api.url, _specs(), Schedule(rate=200, duration=30, max_requests=25))
    assert result.sent == 25 and sum(fake_api.counts.values()) == 25
    assert 25 / 200 <= result.send_window < 25 / 200 + 0.5


def test_slow_server_shows_as_latency_and_drops_not_as_a_lower_rate(fake_api):
    """Coordinated omission check: one worker, 100 ms per request, 20 req/s offered."""
    fake_api.delay = 0.1
    result = run(fake_api.url, _specs(), Schedule(rate=20, duration=1.0, concurrency=1))
    stats = result.stats
    assert result.scheduled == 20
    assert result.dropped > 0 and result.sent + result.dropped == 20
    assert stats.late > 0
    # a closed-loop client would report ~100 ms; measured from the due time it is longer
    assert stats.histogram.percentile(99) > 0.15
    assert stats.histogram.min >= 0.1


def test_connection_refused_counts_as_error():
    result = run("http://127.0.0.1:9", _specs(), Schedule(rate=20, duration=0.25, timeout=2))
    assert result.stats.by_status == {"refused": 5}
    assert result.stats.errors == 5 and result.stats.failed == 5


def test_cli_report_mix_and_json(fake_api, tmp_path, capsys):
    out = tmp_path / "report.json"
    code = cli.main(["--url", fake_api.url, "--rate", "100", "--duration", "1", "--quiet",
                     "--json", str(out), "--max-error-rate", "0", "--drift", "vma=200"])
    report = json.loads(out.read_text())
    assert code == 0, capsys.readouterr().out
    assert report["sent"] == 100 and report["errors"]["count"] == 0
    assert report["by_kind"]["valid"] == {"200": 80}
    assert report["by_kind"]["batch"] == {"200": 5}
    assert report["by_kind"]["notfound"] == {"404": 5}
    assert sum(sum(c.values()) for k, c in report["by_kind"].items()
               if k.startswith("invalid:")) == 10
    # the server saw exactly what the report says, plus the one GET /model
    server = {str(s): n for s, n in fake_api.counts.items()}
    server["200"] -= 1
    assert server == report["by_status"]
    # drift pinned vma to the top of its domain in every served record
    assert {r["vma"] for r in fake_api.records} == {130}
    assert set(report["latency_ms"]) >= {"p50", "p90", "p95", "p99", "p99.9", "max"}
    # the rendered rate, loosely: a loaded machine may lag the 1 s timetable a little
    achieved = re.search(r"achieved ([\d.]+) req/s", capsys.readouterr().out)
    assert achieved and 80 <= float(achieved.group(1)) <= 100


def test_cli_gates_fail_with_exit_1(fake_api, capsys, tmp_path):
    code = cli.main(["--url", fake_api.url, "--rate", "50", "--duration", "0.4", "--quiet",
                     "--max-p99", "0.001"])
    assert code == 1
    assert "gate max_p99_ms: FAIL" in capsys.readouterr().out
    # records outside the domain: every 'valid' request is answered 422, an unexpected status
    records = tmp_path / "bad.jsonl"
    records.write_text('{"lum": 99, "vma": 50, "lat": 45.0}\n')
    code = cli.main(["--url", fake_api.url, "--rate", "50", "--duration", "0.2", "--quiet",
                     "--mix", "valid=1", "--max-error-rate", "0.5", "--records", str(records)])
    assert code == 1
    assert "unexpected valid -> 422: 10" in capsys.readouterr().out


def test_dropped_sends_fail_the_error_rate_gate(fake_api, capsys):
    """Every answer is a 200, but one slow worker sheds most of the timetable: not a pass."""
    fake_api.delay = 0.1
    code = cli.main(["--url", fake_api.url, "--rate", "40", "--duration", "0.5", "--quiet",
                     "--concurrency", "1", "--mix", "valid=1", "--max-error-rate", "0"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "gate max_error_rate: FAIL" in out and "by status: 200=" in out
    assert "dropped 0" not in out


def test_unfinished_sends_count_against_the_error_rate():
    """Sends still without an answer when the run ended were not served either."""
    plan = Schedule(rate=20, duration=0.2)
    result = RunResult(Stats(), scheduled=4, sent=4, send_window=0.2, elapsed=0.3)
    report = build(result, plan, {}, 0.5, None)
    assert report["unfinished"] == 4 and report["errors"]["gated"] == 4
    assert report["errors"]["rate"] == 1.0
    assert report["gates"]["max_error_rate"]["passed"] is False


def test_ctrl_c_prints_a_partial_report(fake_api):
    process = subprocess.Popen(
        [sys.executable, "load/run.py", "--url", fake_api.url, "--rate", "20",
         "--duration", "60", "--progress-every", "0.5", "--json", "/dev/stdout"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    first = process.stderr.readline()
    if "WARNING" in first:                          # the fake card has no bins for lat
        first = process.stderr.readline()
    assert "sent" in first and "p99" in first       # the live progress line: it is running
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    assert "INTERRUPTED: partial" in out
    report = json.loads(out[out.index("{"):])
    assert report["interrupted"] and 1 <= report["sent"] < 1200
    assert report["scheduled"] == report["sent"] + report["dropped"] + report["cancelled"]
    assert report["completed"] == report["sent"]


def test_ctrl_c_while_waiting_for_the_last_responses_prints_a_partial_report(fake_api):
    fake_api.delay = 8.0  # every POST outlives the 0.3 s timetable
    process = subprocess.Popen(
        [sys.executable, "load/run.py", "--url", fake_api.url, "--rate", "10",
         "--duration", "0.3", "--timeout", "20", "--json", "/dev/stdout"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = ""
    while "waiting up to" not in line:                # the timetable is done, responses due
        line = process.stderr.readline()
        assert line, "the run ended without waiting"
    assert "for 3 response(s)" in line
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "INTERRUPTED: partial" in out
    report = json.loads(out[out.index("{"):])
    assert report["interrupted"] and report["sent"] == 3 and report["unfinished"] == 3


def test_ctrl_c_during_the_start_up_get_model_is_one_line(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli.requests, "get", interrupted)
    try:
        code = cli.main(["--url", "http://127.0.0.1:9", "--duration", "0.1"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C during start-up escaped main() (a traceback for the user)")
    assert code == 130
    err = capsys.readouterr().err
    assert err == ("load: interrupted while preparing (GET /model): nothing was sent, "
                   "no report\n")


def test_card_without_reference_bins_warns_of_uniform_values(fake_api, capsys):
    fake_api.reference = False
    assert cli.main(["--url", fake_api.url, "--rate", "20", "--duration", "0.1", "--quiet",
                     "--mix", "valid=1"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "WARNING" in line]
    assert warnings == ["load: WARNING: GET /model?include=reference gave no reference bins "
                        "for 3 feature(s) (lum, vma, lat): their values are drawn uniformly, "
                        "not like the training data, so expect drift (PSI) on them"]


def test_records_file_needs_no_reference_warning(fake_api, capsys, tmp_path):
    fake_api.reference = False
    records = tmp_path / "records.jsonl"
    records.write_text('{"lum": 1, "vma": 50, "lat": 45.0}\n')
    cli.main(["--url", fake_api.url, "--rate", "20", "--duration", "0.1", "--quiet",
              "--mix", "valid=1", "--records", str(records)])
    assert "WARNING" not in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--mix", "valid=1,oops=1"], "unknown kind 'oops'"),
    (["--drift", "nope=1"], "unknown feature(s) nope"),
])
def test_cli_bad_options_exit_2(fake_api, capsys, argv, message):
    assert cli.main(["--url", fake_api.url, "--duration", "0.1", "--quiet", *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_unreachable_api_exit_2(capsys):
    assert cli.main(["--url", "http://127.0.0.1:9", "--duration", "0.1", "--timeout", "1"]) == 2
    assert "cannot start" in capsys.readouterr().err


KEY = "load-test-key-0123456789abcdef"


def test_api_key_file_sends_a_bearer_key_and_never_prints_it(fake_api, tmp_path, capsys):
    fake_api.api_key = KEY
    keys = tmp_path / "api-keys"
    keys.write_text(f"# the API's own secret file\n\n{KEY}\nsecond-key-not-used-by-load\n")
    report = tmp_path / "report.json"
    code = cli.main(["--url", fake_api.url, "--rate", "40", "--duration", "0.25", "--quiet",
                     "--mix", "valid=1", "--api-key-file", str(keys), "--json", str(report),
                     "--max-error-rate", "0"])
    out = capsys.readouterr()
    assert code == 0, out.out
    assert fake_api.counts[200] == 11 and 401 not in fake_api.counts   # + GET /model
    assert KEY not in out.out + out.err + report.read_text()


def test_load_api_key_environment_variable(fake_api, monkeypatch, capsys):
    fake_api.api_key = KEY
    monkeypatch.setenv("LOAD_API_KEY", KEY)
    assert cli.main(["--url", fake_api.url, "--rate", "40", "--duration", "0.1", "--quiet",
                     "--mix", "valid=1", "--max-error-rate", "0"]) == 0
    monkeypatch.delenv("LOAD_API_KEY")
    assert cli.main(["--url", fake_api.url, "--rate", "40", "--duration", "0.1", "--quiet",
                     "--mix", "valid=1", "--max-error-rate", "0"]) == 1
    assert "unexpected valid -> 401: 4" in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    (None, "cannot be read"), ("# only a comment\n\n", "no key in it")])
def test_unusable_api_key_file_exits_2(tmp_path, capsys, content, message):
    keys = tmp_path / "api-keys"
    if content is not None:
        keys.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--url", "http://127.0.0.1:9", "--api-key-file", str(keys)])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_keep_alive_connections_are_reused(raw_server):
    server = raw_server("keep-alive")
    result = run(server.url, _specs(), Schedule(rate=100, duration=0.3, concurrency=2))
    assert result.stats.by_status == {"200": 30} and server.requests == 30
    assert 1 <= server.connections <= 2


def test_a_large_pool_opens_only_the_connections_in_use(raw_server):
    """Requests 10 ms apart, answered at once: one connection carries nearly all of them
    (the most recently used one is taken first), not one per worker of the pool."""
    server = raw_server("keep-alive")
    result = run(server.url, _specs(), Schedule(rate=100, duration=0.5, concurrency=64))
    assert result.stats.by_status == {"200": 50}
    assert server.connections < 10


def test_a_closed_connection_is_replaced_for_the_next_request(raw_server):
    server = raw_server("close")                 # as gunicorn's sync workers answer
    result = run(server.url, _specs(), Schedule(rate=100, duration=0.3, concurrency=2))
    assert result.stats.by_status == {"200": 30} and server.connections == 30


def test_a_connection_closed_without_an_answer_is_a_reset(raw_server):
    server = raw_server("drop")
    result = run(server.url, _specs(), Schedule(rate=20, duration=0.2, timeout=5))
    assert result.stats.by_status == {"reset": 4} and result.stats.errors == 4
    assert server.requests == 4


def test_a_request_without_an_answer_times_out(raw_server):
    server = raw_server("hold")
    started = time.perf_counter()
    result = run(server.url, _specs(), Schedule(rate=20, duration=0.1, timeout=0.5))
    assert result.stats.by_status == {"timeout": 2} and result.stats.failed == 2
    assert 0.5 <= time.perf_counter() - started < 3.0
    assert result.stats.histogram.min >= 0.49     # the loop's timers are in milliseconds


def test_each_request_is_in_the_timeline_interval_it_was_due(fake_api):
    result = run(fake_api.url, _specs(), Schedule(rate=40, duration=2.0, concurrency=4))
    timeline = result.stats.timeline.to_dict(result.send_window)
    assert timeline["t_s"] == [0.0, 1.0]
    assert timeline["target_rate"] == timeline["sent_rate"] == [40.0, 40.0]
    assert timeline["by_status"] == {"200": [40.0, 40.0]}
    assert timeline["by_kind"] == {"valid": {"requests": [40.0, 40.0],
                                             "expected": [40.0, 40.0]}}
    assert all(1 <= n <= 8 for n in timeline["in_flight_max"])
    assert all(p is not None and p > 0 for p in timeline["latency_ms"]["p99"])


def test_request_bytes_carry_the_base_path_and_the_headers():
    endpoint = Endpoint.parse("http://api.example:8080/v1/")
    assert (endpoint.host, endpoint.port, endpoint.prefix) == ("api.example", 8080, "/v1")
    assert endpoint.encode("POST", "/predict", b"{}", {"Content-Type": "application/json"}) \
        == (b"POST /v1/predict HTTP/1.1\r\nHost: api.example:8080\r\n"
            b"User-Agent: accident-api-load\r\nAccept: */*\r\nContent-Length: 2\r\n"
            b"Content-Type: application/json\r\n\r\n{}")
    assert b"Content-Length" not in endpoint.encode("GET", "/x", None, {})


@pytest.mark.parametrize("url", ["ftp://host/", "127.0.0.1:8000", "http://"])
def test_a_base_url_that_is_not_http_is_refused(url):
    with pytest.raises(ValueError, match="is not an http"):
        Endpoint.parse(url)


def test_a_header_value_with_a_line_break_is_refused():
    with pytest.raises(ValueError, match="line breaks"):
        Endpoint.parse("http://127.0.0.1").encode("GET", "/", None, {"X": "a\r\nInjected: 1"})


def test_a_finite_request_stream_ends_the_timetable(fake_api):
    specs = [next(_specs()) for _ in range(5)]
    result = run(fake_api.url, iter(specs), Schedule(rate=100, duration=10))
    assert result.scheduled == result.sent == 5 and result.stats.by_status == {"200": 5}
    assert result.send_window < 1.0


def _predictions_with_feedback(delay: float, asked: list):
    """POST /predict forever; each answer asks for its POST /feedback ``delay`` s later."""
    def label(status, body):
        asked.append(status)
        if status != 200:
            return None
        body = json.dumps({"prediction_id": json.loads(body)["prediction_id"], "actual": 1})
        return delay, RequestSpec("feedback", "POST", "/feedback", frozenset({200}),
                                  body.encode(), {"Content-Type": "application/json"})
    for spec in _specs():
        yield replace(spec, follow_up=label)


def test_follow_ups_leave_after_their_delay_off_the_timetable(fake_api):
    asked = []
    result = run(fake_api.url, _predictions_with_feedback(0.3, asked),
                 Schedule(rate=50, duration=1.0, concurrency=8))
    # the timetable is the predictions' alone: as long as without follow-ups
    assert result.scheduled == result.sent == 50 and 1.0 <= result.send_window < 1.5
    follow = result.follow_ups
    assert (follow.scheduled, follow.sent, follow.dropped, follow.cancelled) == (50, 50, 0, 0)
    assert follow.kinds == {"feedback"} and asked == [200] * 50
    assert result.stats.by_kind == {"valid": {"200": 50}, "feedback": {"200": 50}}
    # each label left at least 0.3 s after its prediction was answered (the server's clock)
    waits = [labelled - fake_api.predictions[prediction_id][1]
             for prediction_id, (_, labelled) in fake_api.labels.items()]
    assert len(waits) == 50 and min(waits) >= 0.3 and max(waits) < 1.3, waits
    # the run waited for the last label, and the timeline counts them where they fell due
    assert result.elapsed >= 1.0 + 0.3
    timeline = result.stats.timeline.to_dict(result.send_window)
    assert sum(timeline["follow_up_sent_rate"]) == 50
    assert timeline["sent_rate"] == [50.0, 0.0]     # the follow-ups' last interval: none
    report = build(result, Schedule(rate=50, duration=1.0), {}, 0.0, None)
    assert report["follow_ups"] == {"scheduled": 50, "sent": 50, "dropped": 0,
                                    "cancelled": 0, "kinds": ["feedback"]}
    assert report["unfinished"] == 0 and report["gates"]["max_error_rate"]["passed"]


def test_stop_cancels_the_follow_ups_not_yet_due(fake_api):
    stop = threading.Event()
    result = RunResult(Stats())
    worker = threading.Thread(target=run, kwargs=dict(
        base_url=fake_api.url, requests_iter=_predictions_with_feedback(60.0, []),
        plan=Schedule(rate=40, duration=30), stop=stop, result=result))
    worker.start()
    deadline = time.monotonic() + 10
    while result.follow_ups.scheduled < 5:
        assert time.monotonic() < deadline, "no answer asked for its follow-up"
        time.sleep(0.01)
    stop.set()
    worker.join(5)
    assert not worker.is_alive(), "the run waited for follow-ups after stop"
    follow = result.follow_ups
    assert follow.scheduled >= 5 and follow.cancelled == follow.scheduled
    assert follow.sent == 0 and fake_api.labels == {}


def test_dropped_and_unanswered_follow_ups_count_against_the_error_rate():
    stats = Stats()
    for _ in range(10):
        stats.record("valid", frozenset({200}), 200, None, 0.001, False, at=0.1)
    for status in (200,) * 6 + (404,):
        stats.record("feedback", frozenset({200}), status, None, 0.001, False, at=0.5)
    result = RunResult(stats, scheduled=10, sent=10, send_window=1.0, elapsed=1.2,
                       follow_ups=FollowUps(scheduled=10, sent=8, dropped=2,
                                            kinds={"feedback"}))
    report = build(result, Schedule(rate=10, duration=1.0), {}, 0.1, None)
    # errors: one 404; dropped: 2 follow-ups; unfinished: 1 follow-up sent, never answered
    assert report["unfinished"] == 1 and report["errors"]["count"] == 1
    assert report["errors"]["gated"] == 4 and report["errors"]["rate"] == 4 / 20
    assert report["gates"]["max_error_rate"]["passed"] is False
