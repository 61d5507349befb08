"""load/run.py --replay, --feedback and --concept-drift: raw BAAC accidents as requests with
their true outcome, labels sent back after a delay, against the fake API on 127.0.0.1 (the
real service: tests/test_load_replay_acceptance.py)."""
import json
import math
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from load import run as cli
from load.feedback import ReplayTraffic, parse_feedback
from load.replay import CONCEPT_DRIFT_SEGMENT, detect_year, read_accidents
from model import synth
from model.baac import read_raw
from model.feature_specs import FEATURES, SPECS_BY_NAME
from model.features import build_features

ROOT = Path(__file__).resolve().parent.parent
ACCIDENTS = 120


@pytest.fixture(scope="module")
def replay_dir(tmp_path_factory):
    """120 synthetic accidents in the BAAC 2021 format (seed 11)."""
    raw = tmp_path_factory.mktemp("replay")
    synth.write(raw, ACCIDENTS, seed=11)
    return raw


@pytest.fixture
def replay_api(fake_api):
    """The fake API accepting any record (replayed accidents carry the 28 features)."""
    fake_api.check_records = False
    return fake_api


def _records(records) -> Counter:
    """Records as a multiset (their order of arrival is the fake API's threads')."""
    return Counter(json.dumps(record, sort_keys=True) for record in records)


def run_cli(api, tmp_path, *args) -> tuple[int, dict, str]:
    out = tmp_path / "report.json"
    code = cli.main(["--url", api.url, "--rate", "400", "--quiet", "--json", str(out), *args])
    return code, json.loads(out.read_text()) if out.exists() else None, str(out)


def test_accidents_are_what_training_reads_in_num_acc_order(replay_dir):
    frame, target, _ = build_features(read_raw(replay_dir, 2021))
    accidents = read_accidents(replay_dir, 2021)
    assert [a.accident_id for a in accidents] == sorted(frame.index) == list(frame.index)
    assert [a.severe for a in accidents] == target.tolist()
    assert not any(a.flipped for a in accidents)
    unknown = 0
    for accident, row in zip(accidents, frame.to_numpy()):
        assert list(accident.record) == list(FEATURES)
        for name, value in zip(FEATURES, row):
            sent = accident.record[name]
            if math.isnan(value):
                assert sent is None
                unknown += 1
            else:
                kind = int if SPECS_BY_NAME[name].dtype == "int" else float
                assert sent == value and type(sent) is kind, (name, sent)
    assert unknown > 0, "the synthetic files carry unknowns: they must go out as null"


def test_concept_drift_flips_the_outcome_where_vma_is_80_or_more(replay_dir):
    plain = read_accidents(replay_dir, 2021)
    drifted = read_accidents(replay_dir, 2021, concept_drift=True)
    assert CONCEPT_DRIFT_SEGMENT == "vma >= 80"
    segment = [a.record["vma"] is not None and a.record["vma"] >= 80 for a in plain]
    assert 0 < sum(segment) < len(plain)
    for before, after, inside in zip(plain, drifted, segment):
        assert after.record == before.record            # the inputs never change
        assert after.flipped == inside
        assert after.severe == (1 - before.severe if inside else before.severe)


def test_the_real_sample_replays_with_its_unknowns_as_null(baac_sample_dir):
    """The real files (never copied into the project): every usable accident, in order."""
    frame, target, _ = build_features(read_raw(baac_sample_dir, 2021))
    accidents = read_accidents(baac_sample_dir, detect_year(baac_sample_dir))
    assert [a.accident_id for a in accidents] == list(frame.index)
    assert [a.severe for a in accidents] == target.tolist()
    assert sum(value is None for a in accidents for value in a.record.values()) == \
        int(frame.isna().sum().sum())


def test_the_year_is_the_one_whose_files_are_there(replay_dir, tmp_path):
    assert detect_year(replay_dir) == 2021
    with pytest.raises(ValueError, match="no such directory"):
        detect_year(tmp_path / "missing")
    with pytest.raises(ValueError, match="accident-api data synth --year Y"):
        detect_year(tmp_path)
    synth.write(tmp_path, 5, seed=1, year=2021)
    synth.write(tmp_path, 5, seed=1, year=2023)
    with pytest.raises(ValueError, match="files of 2021, 2023: choose one with --year"):
        detect_year(tmp_path)


@pytest.mark.parametrize("text, expected", [
    ("", None), ("0.5,60", (0.5, 60.0)), ("1,0", (1.0, 0.0)), ("0,0", (0.0, 0.0))])
def test_feedback_option(text, expected):
    assert parse_feedback(text) == expected


@pytest.mark.parametrize("text, message", [
    ("0.5", "is not SHARE,DELAY"), ("half,60", "is not SHARE,DELAY"),
    ("nan,1", "is not SHARE,DELAY"), ("1.5,0", "share must be in \\[0, 1\\]"),
    ("-0.1,0", "share must be in"), ("0.5,-1", "delay must be >= 0 s")])
def test_bad_feedback_option(text, message):
    with pytest.raises(ValueError, match=message):
        parse_feedback(text)


def _answer(spec, prediction: int = 1) -> tuple:
    """Feed a prediction request's follow-up a 200 answer; what it asks for."""
    return spec.follow_up(200, json.dumps({"prediction_id": f"id-{id(spec)}",
                                           "prediction": prediction}).encode())


def _chosen(traffic: ReplayTraffic) -> list:
    positions = []
    for position in range(len(traffic.accidents)):
        if _answer(traffic.next_request()) is not None:
            positions.append(position)
    return positions


def test_the_labelled_share_is_a_seeded_choice(replay_dir):
    accidents = read_accidents(replay_dir, 2021)
    first = _chosen(ReplayTraffic(accidents, feedback=(0.3, 0), seed=4))
    assert first == _chosen(ReplayTraffic(accidents, feedback=(0.3, 0), seed=4))
    assert first != _chosen(ReplayTraffic(accidents, feedback=(0.3, 0), seed=5))
    spread = 3 * math.sqrt(len(accidents) * 0.3 * 0.7)
    assert abs(len(first) - 0.3 * len(accidents)) <= spread, len(first)
    assert _chosen(ReplayTraffic(accidents, feedback=(1, 0))) == list(range(len(accidents)))
    assert _chosen(ReplayTraffic(accidents, feedback=(0, 0))) == []
    assert _chosen(ReplayTraffic(accidents)) == []


def test_a_label_is_the_accidents_outcome_for_that_answer_only(replay_dir):
    accidents = read_accidents(replay_dir, 2021, concept_drift=True)
    traffic = ReplayTraffic(accidents, feedback=(1, 2.5), headers={"Authorization": "Bearer k"})
    spec = traffic.next_request()
    assert (spec.method, spec.path) == ("POST", "/predict")
    assert json.loads(spec.body) == accidents[0].record
    delay, label = spec.follow_up(200, b'{"prediction_id": "abc", "prediction": 0}')
    assert delay == 2.5 and (label.kind, label.path, label.expected) == \
        ("feedback", "/feedback", frozenset({200}))
    assert json.loads(label.body) == {"prediction_id": "abc", "actual": accidents[0].severe}
    assert label.headers == {"Content-Type": "application/json", "Authorization": "Bearer k"}
    # no answer, an error or an answer without an id: no label
    assert traffic.next_request().follow_up(None, b"") is None
    assert traffic.next_request().follow_up(503, b"{}") is None
    assert traffic.next_request().follow_up(200, b"not json") is None
    assert traffic.predictions == {"requests": 4, "answered": 1, "not_answered": 2,
                                   "unusable": 1}


def test_once_through_unless_asked_to_loop(replay_dir):
    accidents = read_accidents(replay_dir, 2021)[:3]
    once = ReplayTraffic(accidents)
    assert [once.next_request() is not None for _ in range(4)] == [True] * 3 + [False]
    looping = ReplayTraffic(accidents, loop=True)
    bodies = [looping.next_request().body for _ in range(7)]
    assert bodies == [json.dumps(a.record).encode() for a in accidents * 3][:7]
    assert looping.passes == 3


def test_replay_with_feedback_end_to_end(replay_api, replay_dir, tmp_path):
    answers = tmp_path / "answers.jsonl"
    code, report, _ = run_cli(replay_api, tmp_path, "--replay", str(replay_dir), "--feedback",
                              "0.5,0.2", "--seed", "3", "--answers", str(answers),
                              "--max-error-rate", "0")
    assert code == 0, report
    accidents = read_accidents(replay_dir, 2021)
    # once through, valid requests only (the default mix with --replay); in order: the
    # unit tests above (the fake API's threads may take them in another)
    assert report["sent"] == report["scheduled"] == len(accidents)
    assert _records(replay_api.records) == _records(a.record for a in accidents)
    assert report["settings"]["duration_s"] is None
    replay = report["replay"]
    assert replay == {"dir": str(replay_dir), "year": 2021, "accidents": len(accidents),
                      "severe": sum(a.severe for a in accidents), "passes": 1, "loop": False,
                      "concept_drift": None,
                      "predictions": {"requests": len(accidents), "answered": len(accidents),
                                      "not_answered": 0, "unusable": 0}}
    rows = [json.loads(line) for line in answers.read_text().splitlines()]
    assert sorted(r["accident"] for r in rows) == [a.accident_id for a in accidents]
    labelled = [r for r in rows if r["feedback"] is not None]
    # every label the fake API got is its accident's outcome, sent after the delay
    truth = {a.accident_id: a.severe for a in accidents}
    assert {r["prediction_id"]: truth[r["accident"]] for r in labelled} == \
        {pid: actual for pid, (actual, _) in replay_api.labels.items()}
    assert min(at - replay_api.predictions[pid][1]
               for pid, (_, at) in replay_api.labels.items()) >= 0.2
    cells = Counter(("tp" if r["severe"] else "fp") if r["prediction"] else
                    ("fn" if r["severe"] else "tn") for r in labelled)
    feedback = report["feedback"]
    assert feedback == {"share": 0.5, "delay_s": 0.2, "chosen": len(labelled),
                        "sent": len(labelled), "dropped": 0, "cancelled": 0,
                        "answered": len(labelled), "as_expected": len(labelled),
                        "by_status": {"200": len(labelled)},
                        "results": {"recorded": len(labelled)},
                        "confusion": {cell: cells[cell] for cell in ("tp", "fp", "tn", "fn")}}
    assert 0 < len(labelled) < len(accidents)
    assert all(r["feedback_result"] == "recorded" for r in labelled)
    assert report["by_kind"] == {"feedback": {"200": len(labelled)},
                                 "valid": {"200": len(accidents)}}


def test_max_requests_loops_over_the_accidents(replay_api, replay_dir, tmp_path):
    code, report, _ = run_cli(replay_api, tmp_path, "--replay", str(replay_dir),
                              "--max-requests", str(2 * ACCIDENTS + 10))
    assert code == 0 and report["sent"] == 2 * ACCIDENTS + 10
    assert report["replay"]["passes"] == 3 and report["replay"]["loop"] is True
    accidents = read_accidents(replay_dir, 2021)
    assert _records(replay_api.records) == \
        _records(a.record for a in accidents * 2 + accidents[:10])


def test_concept_drift_and_input_drift_on_a_replay(replay_api, replay_dir, tmp_path):
    code, report, _ = run_cli(replay_api, tmp_path, "--replay", str(replay_dir),
                              "--concept-drift", "--drift", "vma=10", "--feedback", "1,0")
    accidents = read_accidents(replay_dir, 2021, concept_drift=True)
    assert code == 0
    flipped = sum(a.flipped for a in accidents)
    assert report["replay"]["concept_drift"] == {"segment": "vma >= 80", "accidents": flipped}
    assert report["replay"]["severe"] == sum(a.severe for a in accidents)
    # the labels are the drifted outcomes; --drift moved the inputs (unknowns stay null)
    assert sorted(actual for actual, _ in replay_api.labels.values()) == \
        sorted(a.severe for a in accidents)
    shifted = [{**a.record, "vma": None if a.record["vma"] is None
                else min(130, a.record["vma"] + 10)} for a in accidents]
    assert _records(replay_api.records) == _records(shifted)


@pytest.mark.parametrize("argv, message", [
    (["--feedback", "0.5,0"], "--feedback need(s) --replay DIR"),
    (["--concept-drift"], "--concept-drift need(s) --replay DIR"),
    (["--answers", "a.jsonl", "--year", "2021"], "--answers, --year need(s) --replay DIR"),
    (["--replay", "x", "--records", "r.jsonl"], "--replay and --records"),
    (["--replay", "x", "--feedback", "2,0"], "share must be in [0, 1]"),
])
def test_options_that_need_a_replay_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--url", "http://127.0.0.1:9", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_replay_directory_without_baac_files_exits_2(replay_api, tmp_path, capsys):
    assert cli.main(["--url", replay_api.url, "--replay", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"load: cannot start: --replay {tmp_path}: no year 2019-2024")
    assert cli.main(["--url", replay_api.url, "--replay", str(tmp_path), "--year", "2018",
                     "--quiet"]) == 2
    assert "2018 is not a supported BAAC year" in capsys.readouterr().err


def test_unknown_prediction_ids_are_feedback_errors(replay_api, replay_dir, tmp_path):
    """A label the API cannot join (404: the log lost the prediction, another instance
    served it) is an error of the run, by status in the feedback section."""
    replay_api.forget_predictions = True
    code, report, _ = run_cli(replay_api, tmp_path, "--replay", str(replay_dir), "--feedback",
                              "1,0", "--max-error-rate", "0")
    assert code == 1
    feedback = report["feedback"]
    assert feedback["by_status"] == {"404": ACCIDENTS} and feedback["as_expected"] == 0
    assert feedback["results"] == {}
    assert feedback["confusion"] == {"tp": 0, "fp": 0, "tn": 0, "fn": 0}
    assert report["errors"]["unexpected"] == {"feedback -> 404": ACCIDENTS}


def test_ctrl_c_while_labels_are_still_due_cancels_them(replay_api, replay_dir):
    process = subprocess.Popen(
        [sys.executable, "load/run.py", "--url", replay_api.url, "--rate", "400", "--replay",
         str(replay_dir), "--feedback", "1,60", "--json", "/dev/stdout"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    line = ""
    while "follow-up request(s) (feedback) as they fall due" not in line:
        line = process.stderr.readline()
        assert line, "the run ended without waiting for its labels"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    report = json.loads(out[out.index("{"):])
    assert report["interrupted"] and report["sent"] == ACCIDENTS
    assert report["feedback"]["chosen"] == report["feedback"]["cancelled"] == ACCIDENTS
    assert report["feedback"]["sent"] == 0 and replay_api.labels == {}
    assert report["elapsed_s"] < 30
