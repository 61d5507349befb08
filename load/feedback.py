"""The replay's traffic (`load/run.py --replay DIR --feedback SHARE,DELAY`): one POST /predict
per accident, in order, and the accident's true outcome POSTed to /feedback for a share of
the answered predictions, DELAY seconds after each answer.

Which predictions get their label is one seeded draw per replayed prediction, in replay
order, made when its request is built: the same --seed labels the same positions whatever
the server's timing, and a chosen prediction is labelled only once it is answered (200 with
a `prediction_id`). Each label is a follow-up request of the load engine (load.runner), one
`{"prediction_id", "actual"}` per POST, so the timetable of predictions never waits for it.
The tallies (what was answered, what each label's answer recorded, the confusion counts of
the recorded labels) are kept on the engine's event loop and read once the run is over.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from functools import partial

from load.payloads import JSON, PREDICT, RequestSpec
from load.replay import CONCEPT_DRIFT_SEGMENT, Accident

FEEDBACK = "/feedback"
KIND = "feedback"
CELLS = ("tp", "fp", "tn", "fn")


def parse_feedback(text: str) -> tuple[float, float] | None:
    """--feedback 'SHARE,DELAY' as (share in [0, 1], delay in s >= 0); '' is None (no labels)."""
    if not text:
        return None
    share, sep, delay = text.partition(",")
    try:
        values = (float(share), float(delay))
    except ValueError:
        values = None
    if not sep or values is None or any(value != value for value in values):
        raise ValueError(f"--feedback: {text!r} is not SHARE,DELAY (e.g. 0.5,60: half the "
                         f"answered predictions, each labelled 60 s after its answer)")
    if not 0 <= values[0] <= 1:
        raise ValueError(f"--feedback: the share must be in [0, 1], got {share}")
    if values[1] < 0:
        raise ValueError(f"--feedback: the delay must be >= 0 s, got {delay}")
    return values


def _cell(predicted: int, actual: int) -> str:
    return ("tp" if actual else "fp") if predicted else ("fn" if actual else "tn")


class ReplayTraffic:
    """The replay's /predict requests in order (once through, or looping when ``loop``),
    the labels they call for, and what the server answered to both.

    ``keep_answers`` keeps one row per answered prediction for `write_answers` (--answers);
    ``source`` (dir, year) and ``concept_drift`` are reported as they were given.
    """

    def __init__(self, accidents: list[Accident], *, loop: bool = False,
                 feedback: tuple[float, float] | None = None, seed: int = 0,
                 headers: dict | None = None, keep_answers: bool = False,
                 source: dict | None = None, concept_drift: bool = False) -> None:
        self.accidents, self.loop, self.concept_drift = accidents, loop, concept_drift
        self.share, self.delay = feedback if feedback is not None else (0.0, 0.0)
        self.feedback = feedback is not None
        self.headers = {**JSON, **(headers or {})}
        self.source = source or {}
        self.bodies = [json.dumps(accident.record).encode() for accident in accidents]
        self.choice = random.Random(seed)     # which predictions get a label
        self.position, self.passes = 0, 0
        self.predictions = Counter()          # requests, answered, not_answered, unusable
        self.results = Counter()              # a label's answer: recorded, already_recorded
        self.confusion = Counter(dict.fromkeys(CELLS, 0))
        self.chosen = 0
        self.answers: list[dict] | None = [] if keep_answers else None

    def next_request(self) -> RequestSpec | None:
        """POST /predict of the next accident; None at the end of a pass unless looping."""
        if self.position == len(self.accidents):
            if not self.loop:
                return None
            self.position = 0
        if self.position == 0:
            self.passes += 1
        index, self.position = self.position, self.position + 1
        chosen = self.feedback and self.choice.random() < self.share
        self.predictions["requests"] += 1
        return RequestSpec("valid", "POST", PREDICT, frozenset({200}), self.bodies[index],
                           dict(self.headers),
                           follow_up=partial(self._answered, index, self.passes, chosen))

    def _answered(self, index: int, replay_pass: int, chosen: bool, status, body: bytes):
        """A prediction's answer: kept, and the label it calls for (delay, request) if chosen."""
        accident = self.accidents[index]
        try:
            answer = json.loads(body) if status == 200 else None
            prediction_id, predicted = str(answer["prediction_id"]), int(answer["prediction"])
        except (ValueError, KeyError, TypeError):
            self.predictions["unusable" if status == 200 else "not_answered"] += 1
            return None
        self.predictions["answered"] += 1
        row = None
        if self.answers is not None:
            row = {"accident": accident.accident_id, "pass": replay_pass,
                   "prediction_id": prediction_id, "prediction": predicted,
                   "probability": answer.get("probability"),
                   "model_version": answer.get("model_version"), "severe": accident.severe,
                   "flipped": accident.flipped, "feedback": None, "feedback_result": None}
            self.answers.append(row)
        if not chosen:
            return None
        self.chosen += 1
        body = json.dumps({"prediction_id": prediction_id, "actual": accident.severe})
        label = RequestSpec(KIND, "POST", FEEDBACK, frozenset({200}), body.encode(),
                            dict(self.headers),
                            follow_up=partial(self._labelled, predicted, accident.severe, row))
        return self.delay, label

    def _labelled(self, predicted: int, actual: int, row: dict | None, status, body: bytes):
        """A label's answer: what the server did with it; a recorded one fills its cell."""
        result = None
        if status == 200:
            try:
                result = str(json.loads(body)["results"][0]["status"])
            except (ValueError, KeyError, IndexError, TypeError):
                result = "unreadable"
            self.results[result] += 1
            if result == "recorded":
                self.confusion[_cell(predicted, actual)] += 1
        if row is not None:
            row["feedback"] = status if status is not None else "no answer"
            row["feedback_result"] = result
        return None

    def report(self, snapshot: dict, follow_ups) -> dict:
        """The report's `replay` section, and `feedback` when labels were asked for.

        ``snapshot``: Stats.snapshot() of the run; ``follow_ups``: its RunResult.follow_ups.
        """
        sections = {"replay": {
            **self.source, "accidents": len(self.accidents),
            "severe": sum(accident.severe for accident in self.accidents),
            "passes": self.passes, "loop": self.loop,
            "concept_drift": ({"segment": CONCEPT_DRIFT_SEGMENT, "accidents": sum(
                accident.flipped for accident in self.accidents)} if self.concept_drift
                else None),
            "predictions": {name: self.predictions[name] for name in
                            ("requests", "answered", "not_answered", "unusable")}}}
        if self.feedback:
            statuses = snapshot["by_kind"].get(KIND, {})
            sections["feedback"] = {
                "share": self.share, "delay_s": self.delay, "chosen": self.chosen,
                "sent": follow_ups.sent, "dropped": follow_ups.dropped,
                "cancelled": follow_ups.cancelled, "answered": sum(
                    n for label, n in statuses.items() if label.isdigit()),
                "as_expected": statuses.get("200", 0),
                "by_status": dict(sorted(statuses.items())),
                "results": dict(sorted(self.results.items())),
                "confusion": {cell: self.confusion[cell] for cell in CELLS}}
        return sections

    def write_answers(self, path: str) -> None:
        """One JSON line per answered prediction (--answers FILE)."""
        with open(path, "w", encoding="utf-8") as out:
            for row in self.answers or []:
                out.write(json.dumps(row) + "\n")
