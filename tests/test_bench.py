"""bench/ smoke tests: modules import, wrk output parses, the targets judge, and the
seed-style reference and ceiling apps answer the seed record. No timings are asserted."""
import json
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from bench import ceiling_app, configs, memory, payloads, report, summary, wrk

WRK_SAMPLE = """Running 10s test @ http://127.0.0.1:8000/predict
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.71ms  512.00us  14.02ms   90.12%
  Latency Distribution
     50%    2.65ms
     75%    2.90ms
     90%    3.20ms
     99%  650.00us
  28301 requests in 10.00s, 5.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   2830.05
Transfer/sec:    522.33KB
"""


def test_wrk_report_is_parsed_with_units():
    parsed = wrk.parse(WRK_SAMPLE)
    assert parsed == {"rps": 2830.05, "p50_ms": 2.65, "p99_ms": 0.65, "requests": 28301,
                      "errors": 7}


def test_batch_body_has_the_requested_records_all_valid_hours():
    records = json.loads(payloads.batch_body(50))["records"]
    assert len(records) == 50
    assert {r["hour"] for r in records} <= set(range(24))
    assert set(records[0]) == set(payloads.SEED_RECORD)


def test_v2_bench_bodies_are_the_same_request_in_json_and_binary(client):
    """bench/v2_binary.py compares like with like: both bodies predict the same 50 rows."""
    from bench import v2_binary

    bodies = v2_binary.encodings(50)
    json_body, json_headers = bodies["json"]
    as_json = client.post(v2_binary.PATH, data=json_body, headers=json_headers)
    binary_body, binary_headers = bodies["binary"]
    as_binary = client.post(v2_binary.PATH, data=binary_body, headers=binary_headers)
    assert as_json.status_code == as_binary.status_code == 200
    assert as_binary.mimetype == "application/octet-stream"
    length = int(as_binary.headers[v2_binary.HEADER_LENGTH])
    header, raw = json.loads(as_binary.data[:length]), as_binary.data[length:]
    predicted = {o["name"]: o["data"] for o in as_json.get_json()["outputs"]}
    assert [o["shape"] for o in header["outputs"]] == [[50], [50], [50]]
    assert np.frombuffer(raw[:400], "<i8").tolist() == predicted["predict"]
    assert np.frombuffer(raw[400:800], "<f8").tolist() == predicted["probability"]


def test_targets_pass_and_fail_on_the_numbers():
    rows = {
        "a": {"wrk.rps": 50.0, "wrk.rps_best": 90.0},
        "c": {"wrk.rps": 2800.0, "open.p99_ms": 4.0, "open.rps": 999.0, "open.errors": 0,
              "openloop.p99_ms": 6.0, "openloop.rps": 1000.0, "openloop.errors": 0,
              "batch.rows_per_s": 19000.0, "memory.pss_mb": 140.0},
        "d": {"wrk.rps": 6000.0},
        "f": {"wrk.rps": 3000.0},
    }
    verdicts = {v["target"].split(" (")[0]: v["status"] for v in summary.targets(rows, 1000)}
    assert list(verdicts.values()) == ["FAIL", "PASS", "FAIL", "PASS", "FAIL", "PASS", "PASS"]


def test_open_pass_that_cannot_keep_the_rate_fails_the_p99_target():
    rows = {"c": {"open.p99_ms": 1.0, "open.rps": 600.0, "open.errors": 0}}
    p99 = summary.targets(rows, 1000)[3]
    assert p99["status"] == "FAIL"


def test_summary_takes_medians_and_best_round():
    rounds = [{"a": {"wrk": {"rps": r, "p50_ms": 1.0, "p99_ms": 2.0, "errors": 0}}}
              for r in (40.0, 90.0, 50.0)]
    row = summary.summarise(rounds)["a"]
    assert (row["wrk.rps"], row["wrk.rps_best"], row["rounds"]) == (50.0, 90.0, 3)
    assert "(a)" in report.text(summary.summarise(rounds))


def test_own_process_memory_is_read():
    own = memory.tree_memory(__import__("os").getpid())
    assert own["pss_mb"] > 0 and own["anon_pss_mb"] > 0 and own["worker_rss_mb"] > 0


def test_every_config_has_a_command(tmp_path):
    for config in configs.CONFIGS:
        argv, env = configs.command(config, "python", 8000, tmp_path, tmp_path)
        assert "8000" in " ".join(argv) + json.dumps(env)


def test_ceiling_app_answers_the_seed_record():
    reply = ceiling_app.app.test_client().post("/predict", json=payloads.SEED_RECORD)
    assert reply.status_code == 200 and reply.get_json()["prediction"] == 0


# starlette warns that its test client will move from httpx to httpx2; irrelevant here.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_seed_reference_predicts_with_n_jobs_as_trained(tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from bench.seed_reference.app import create_app, load_seed_model

    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, len(payloads.SEED_RECORD)))
    forest = RandomForestClassifier(n_estimators=3, n_jobs=1, random_state=0)
    joblib.dump(forest.fit(features, features[:, 0] > 0), tmp_path / "model.joblib")
    assert load_seed_model(tmp_path).n_jobs == -1
    with TestClient(create_app(tmp_path)) as client:
        reply = client.post("/predict", json=payloads.SEED_RECORD)
        bad = client.post("/predict", json={"place": 10})
    assert reply.status_code == 200 and reply.json()["prediction"] in (0, 1)
    assert bad.status_code == 422


def test_the_ceiling_logs_exactly_when_the_service_does(monkeypatch):
    import importlib

    from bench import ceiling_gunicorn

    for raw, expected in (("1", "-"), ("0", None), ("", None)):
        monkeypatch.setenv("ACCESS_LOG", raw)
        assert importlib.reload(ceiling_gunicorn).accesslog == expected


@pytest.mark.network
def test_openloop_client_sends_its_timetable_to_a_local_server():
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from bench import openloop

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, ceiling_app.app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = openloop.run(server.server_port, "/predict", payloads.record_body(),
                              rate=50, duration=0.4, timeout=5)
    finally:
        server.shutdown()
    assert (result["errors"], result["dropped"]) == (0, 0)
    assert result["p50_ms"] is not None and result["p99_ms"] >= result["p50_ms"]


def test_the_cached_benchmark_model_follows_the_training_recipe(tmp_path, monkeypatch):
    from bench import run

    first = run.cached_model_dir(tmp_path, "--synthetic --accidents 50000")
    assert first == run.cached_model_dir(tmp_path, "--synthetic  --accidents 50000")
    assert first != run.cached_model_dir(tmp_path, "--synthetic --accidents 20000")
    monkeypatch.setitem(run.DEFAULT_HYPERPARAMETERS, "n_estimators", 100)
    assert first != run.cached_model_dir(tmp_path, "--synthetic --accidents 50000")


def test_a_cached_model_an_older_training_code_wrote_is_retrained(tmp_path, monkeypatch):
    import argparse
    import subprocess

    from bench import run

    options = argparse.Namespace(model=None, work_dir=tmp_path, train_args="--synthetic")
    stale = run.cached_model_dir(tmp_path, "--synthetic")
    stale.mkdir()
    (stale / "model_card.json").write_text('{"model_version": "old"}', encoding="utf-8")
    trained = []
    monkeypatch.setattr(subprocess, "run", lambda argv, **kwargs: trained.append(argv))

    assert run.ensure_model(options) == stale
    assert trained and trained[0][-2:] == ["--out", str(stale)]


def test_results_are_named_by_day_and_commit_and_never_overwritten(tmp_path):
    from datetime import datetime, timezone

    from bench import results

    started = datetime(2026, 12, 7, 23, 59, tzinfo=timezone.utc)
    first = results.write({"rounds": []}, results.result_path(started, "436b1a2",
                                                              directory=tmp_path / "r"))
    assert first == tmp_path / "r" / "2026-12-07-436b1a2.json"
    assert json.loads(first.read_text()) == {"rounds": []}
    second = results.result_path(started, "436b1a2", directory=tmp_path / "r")
    assert second.name == "2026-12-07-436b1a2-2.json"
    assert results.result_path(started, "436b1a2-dirty", "capacity",
                               directory=tmp_path / "r").name \
        == "2026-12-07-436b1a2-dirty-capacity.json"
    assert results.DIRECTORY == Path(__file__).resolve().parent.parent / "bench" / "results"


def test_a_run_is_saved_with_its_header_then_its_figures(tmp_path, monkeypatch):
    import argparse
    from datetime import datetime, timezone

    from bench import results

    monkeypatch.setattr("sys.argv", ["bench/v2_binary.py", "--rounds", "1"])
    options = argparse.Namespace(rounds=1, json=tmp_path / "run.json")
    started = datetime(2026, 12, 8, 4, 0, tzinfo=timezone.utc)
    path = results.save_run(started, "056ef6c", options, {"medians": {"json": 1.0}}, "v2")
    saved = json.loads(path.read_text())
    assert path == tmp_path / "run.json"
    assert saved == {"date": "2026-12-08T04:00:00+00:00", "commit": "056ef6c",
                     "machine": results.machine(), "command": "bench/v2_binary.py --rounds 1",
                     "options": {"rounds": 1, "json": str(tmp_path / "run.json")},
                     "medians": {"json": 1.0}}


def test_the_commit_of_a_result_says_when_the_tree_was_dirty(tmp_path):
    import subprocess

    from bench import results

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)
    assert results.checkout_commit(tmp_path) == "unknown"
    git("init", "-q")
    (tmp_path / "file").write_text("one")
    git("add", "file")
    git("-c", "user.email=bench@example.invalid", "-c", "user.name=bench", "commit", "-qm", "x")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "--short=7", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    assert results.checkout_commit(tmp_path) == head
    (tmp_path / "file").write_text("two")
    assert results.checkout_commit(tmp_path) == f"{head}-dirty"


def test_bench_run_writes_its_json_into_the_results_directory_by_default(monkeypatch, tmp_path):
    from bench import results, run

    monkeypatch.setattr(run.wrk, "wrk_path", lambda: "/usr/bin/wrk")
    monkeypatch.setattr(run, "ensure_model", lambda options: tmp_path / "model")
    monkeypatch.setattr(run, "run_rounds", lambda *args: [])
    monkeypatch.setattr(results, "DIRECTORY", tmp_path / "results")
    assert run.main(["--work-dir", str(tmp_path / "work"), "--rounds", "0"]) == 0
    (written,) = (tmp_path / "results").iterdir()
    document = json.loads(written.read_text())
    assert written.name == f"{document['date'][:10]}-{document['commit']}.json"
    assert document["rounds"] == [] and "load_average" in document


def test_capacity_targets_judge_the_medians():
    from argparse import Namespace

    from bench import capacity

    def passes(cli_rps, cli_p99, engine_p99):
        return {"load_run_py": {"rps": cli_rps, "p50_ms": 1.0, "p99_ms": cli_p99},
                "engine_in_process": {"rps": 2000.0, "p50_ms": 1.0, "p99_ms": engine_p99}}
    options = Namespace(rate=2000.0, p99_agreement=3.0)
    # the p99 difference is paired by round: 1.5, 24 and 1 ms -> median 1.5
    medians, targets = capacity.verdicts(
        [passes(1990.0, 9.0, 7.5), passes(1890.0, 30.0, 6.0), passes(1995.0, 8.0, 7.0)],
        options)
    assert medians["load_run_py"]["rps"] == 1990.0 and medians["load_run_py"]["p99_ms"] == 9.0
    assert [(t["status"], t["value"]) for t in targets] == [("PASS", 0.995), ("PASS", 1.5)]
    _, targets = capacity.verdicts([passes(1890.0, 12.0, 7.0)], options)
    assert [(t["status"], t["value"]) for t in targets] == [("FAIL", 0.945), ("FAIL", 5.0)]


@pytest.mark.integration
def test_capacity_script_runs_both_passes_against_the_ceiling_app(tmp_path):
    from bench import capacity

    out = tmp_path / "capacity.json"
    assert capacity.main(["--rate", "100", "--duration", "1", "--rounds", "2",
                          "--wrk-duration", "0", "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    assert [sorted(r) for r in document["rounds"]] == [["engine_in_process", "load_run_py"]] * 2
    for round_result in document["rounds"]:
        for figures in round_result.values():
            assert figures["sent"] == 100 and figures["errors"] == 0, figures
            assert figures["client_cpu_ms_per_request"] > 0
            assert figures["server_cpu_ms_per_request"] > 0
    # judged, not asserted: timings are the benchmark's business, not a test's
    assert [t["status"] in ("PASS", "FAIL") for t in document["targets"]] == [True, True]
    assert document["commit"] and document["machine"]["cores"] >= 1


def test_capacity_waits_for_an_idle_machine_up_to_its_limit(monkeypatch):
    from bench import capacity

    assert 0.0 <= capacity.idle_share(0.2) <= 1.0
    shares = iter([0.5, 0.7, 0.95, 0.99])
    monkeypatch.setattr(capacity, "idle_share", lambda seconds: next(shares))
    assert capacity.wait_for_idle(60) == 0.95
    shares = iter([0.5] * 100)
    assert capacity.wait_for_idle(0) == 0.5            # no time to wait: the share seen
