"""One request per traffic kind, with the statuses the server should answer it with."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from itertools import cycle
from typing import Callable

from load.records import RecordSampler

JSON = {"Content-Type": "application/json"}
PREDICT, BATCH = "/predict", "/predict/batch"


@dataclass(frozen=True)
class RequestSpec:
    """One HTTP request to send and the statuses that count as the server behaving.

    ``follow_up(status, body)`` (optional) is called with the answer (status None and an
    empty body when none came) and may return ``(delay, RequestSpec)``: a request the engine
    sends ``delay`` seconds later, off the timetable (the feedback for a prediction).
    """

    kind: str                      # mix kind, with the client-error flavour: "invalid:wrong_method"
    method: str
    path: str
    expected: frozenset[int]
    body: bytes | None = None
    headers: dict = field(default_factory=dict)
    follow_up: Callable[[int | None, bytes], tuple[float, RequestSpec] | None] | None = \
        field(default=None, compare=False)


class RequestFactory:
    """Builds the RequestSpec for each mix kind; invalid requests rotate through every
    client-error flavour so each one is exercised. `headers` (e.g. Authorization) go on
    every request. With a `replay` (load.feedback.ReplayTraffic) the valid kind sends its
    accidents, in order, instead of records drawn from the card; the other kinds keep theirs."""

    def __init__(self, sampler: RecordSampler, batch_size: int = 10,
                 headers: dict | None = None, max_batch_size: int = 1000, replay=None):
        self.sampler, self.batch_size, self.replay = sampler, batch_size, replay
        self.headers = dict(headers or {})
        self.max_batch_size = max_batch_size    # the API's MAX_BATCH_SIZE (not published)
        self._invalid = cycle([
            ("out_of_range", self._out_of_range), ("missing_field", self._missing_field),
            ("unknown_field", self._unknown_field), ("malformed_json", self._malformed_json),
            ("wrong_content_type", self._wrong_content_type), ("wrong_method", self._wrong_method),
            ("batch_over_cap", self._batch_over_cap),
        ])
        self._notfound = cycle(["/no-such-endpoint", "/predict/unknown", "/v0/predict"])

    def build(self, kind: str) -> RequestSpec | None:
        """The next request of ``kind`` (valid, invalid, notfound or batch); None once a
        replay has no accident left."""
        spec = self._build(kind)
        if spec is not None and self.headers:
            spec = replace(spec, headers={**spec.headers, **self.headers})
        return spec

    def _build(self, kind: str) -> RequestSpec | None:
        if kind == "valid" and self.replay is not None:
            return self.replay.next_request()
        if kind == "valid":
            return _post("valid", PREDICT, self.sampler.record(), {200})
        if kind == "batch":
            records = [self.sampler.record() for _ in range(self.batch_size)]
            return _post("batch", BATCH, {"records": records}, {200})
        if kind == "notfound":
            return RequestSpec("notfound", "GET", next(self._notfound), frozenset({404}))
        if kind == "invalid":
            flavour, make = next(self._invalid)
            spec = make()
            return RequestSpec(f"invalid:{flavour}", spec.method, spec.path, spec.expected,
                               spec.body, spec.headers)
        raise ValueError(f"unknown kind {kind!r}")

    def _out_of_range(self) -> RequestSpec:
        record = self.sampler.record()
        for name in self.sampler.order:
            spec = self.sampler.features[name]
            if spec.get("codes"):
                record[name] = max(spec["codes"]) + 1000
                return _post("", PREDICT, record, {422})
            if spec.get("maximum") is not None:
                record[name] = spec["maximum"] + 1000
                return _post("", PREDICT, record, {422})
        raise ValueError("the card gives no bounded feature to push out of range")

    def _missing_field(self) -> RequestSpec:
        record = self.sampler.record()
        record.pop(self.sampler.order[-1])
        return _post("", PREDICT, record, {422})

    def _unknown_field(self) -> RequestSpec:
        return _post("", PREDICT, {**self.sampler.record(), "not_a_feature": 1}, {422})

    def _malformed_json(self) -> RequestSpec:
        return RequestSpec("", "POST", PREDICT, frozenset({400}), b'{"place": 1,', dict(JSON))

    def _wrong_content_type(self) -> RequestSpec:
        body = json.dumps(self.sampler.record()).encode()
        return RequestSpec("", "POST", PREDICT, frozenset({415}), body,
                           {"Content-Type": "text/plain"})

    def _batch_over_cap(self) -> RequestSpec:
        # the cap is checked on the count before any record is validated: one record
        # repeated is enough, and costs the client nothing to build
        records = [self.sampler.record()] * (self.max_batch_size + 1)
        return _post("", BATCH, {"records": records}, {413})

    def _wrong_method(self) -> RequestSpec:
        return RequestSpec("", "GET", PREDICT, frozenset({405}))


def _post(kind: str, path: str, document, expected: set[int]) -> RequestSpec:
    return RequestSpec(kind, "POST", path, frozenset(expected),
                       json.dumps(document).encode(), dict(JSON))
