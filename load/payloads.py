"""Request payloads: realistic records from the model card's feature domain (or a records
file), optional drift, and one request per traffic kind with the statuses it should get."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from itertools import cycle

JSON = {"Content-Type": "application/json"}
PREDICT, BATCH = "/predict", "/predict/batch"


@dataclass(frozen=True)
class RequestSpec:
    """One HTTP request to send and the statuses that count as the server behaving."""

    kind: str                      # mix kind, with the client-error flavour: "invalid:wrong_method"
    method: str
    path: str
    expected: frozenset[int]
    body: bytes | None = None
    headers: dict = field(default_factory=dict)


def card_features(model_document: dict) -> list[dict]:
    """The card's feature list from a GET /model answer (the card itself or wrapping it)."""
    for doc in (model_document, model_document.get("card") or {}):
        if isinstance(doc.get("features"), list) and doc["features"]:
            return doc["features"]
    raise ValueError("GET /model has no 'features' list: is the model card served?")


def read_records(path: str) -> list[dict]:
    """JSON-lines file of records (one object per line, blank lines ignored)."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object per line")
            records.append(record)
    if not records:
        raise ValueError(f"{path}: no records")
    return records


class RecordSampler:
    """Draws valid records: uniform over each feature's codes or seen range, or from a file.

    Drift shifts a numeric feature by SHIFT (clamped to the API's domain so drifted records
    are still answered, and counted in the drift bins) and a categorical one by SHIFT
    positions along its list of codes.
    """

    def __init__(self, features: list[dict], rng: random.Random,
                 drift: dict[str, float] | None = None, records: list[dict] | None = None):
        self.features = {spec["name"]: spec for spec in features}
        unknown = sorted(set(drift or {}) - set(self.features))
        if unknown:
            raise ValueError(f"--drift: unknown feature(s) {', '.join(unknown)}")
        self.order = [spec["name"] for spec in features]
        self.rng, self.drift, self.records = rng, drift or {}, records

    def _draw(self, spec: dict):
        if spec.get("codes"):
            return self.rng.choice(spec["codes"])
        low = _first(spec.get("seen_min"), spec.get("minimum"), 0.0)
        high = _first(spec.get("seen_max"), spec.get("maximum"), low)
        value = self.rng.uniform(low, high)
        return int(round(value)) if spec.get("dtype") == "int" else round(value, 6)

    def _shift(self, spec: dict, value, shift: float):
        if spec.get("codes"):
            codes = list(spec["codes"])
            position = codes.index(value) if value in codes else 0
            return codes[min(len(codes) - 1, max(0, position + int(shift)))]
        value = value + shift
        low, high = spec.get("minimum"), spec.get("maximum")
        value = value if low is None else max(low, value)
        value = value if high is None else min(high, value)
        return int(round(value)) if spec.get("dtype") == "int" else value

    def record(self) -> dict:
        """One record, drift applied."""
        if self.records is not None:
            record = dict(self.rng.choice(self.records))
        else:
            record = {name: self._draw(self.features[name]) for name in self.order}
        for name, shift in self.drift.items():
            record[name] = self._shift(self.features[name], record[name], shift)
        return record


def _first(*values):
    return next(value for value in values if value is not None)


class RequestFactory:
    """Builds the RequestSpec for each mix kind; invalid requests rotate through every
    client-error flavour so each one is exercised."""

    def __init__(self, sampler: RecordSampler, batch_size: int = 10):
        self.sampler, self.batch_size = sampler, batch_size
        self._invalid = cycle([
            ("out_of_range", self._out_of_range), ("missing_field", self._missing_field),
            ("unknown_field", self._unknown_field), ("malformed_json", self._malformed_json),
            ("wrong_content_type", self._wrong_content_type), ("wrong_method", self._wrong_method),
        ])
        self._notfound = cycle(["/no-such-endpoint", "/predict/unknown", "/v0/predict"])

    def build(self, kind: str) -> RequestSpec:
        """The next request of ``kind`` (valid, invalid, notfound or batch)."""
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

    def _wrong_method(self) -> RequestSpec:
        return RequestSpec("", "GET", PREDICT, frozenset({405}))


def _post(kind: str, path: str, document, expected: set[int]) -> RequestSpec:
    return RequestSpec(kind, "POST", path, frozenset(expected),
                       json.dumps(document).encode(), dict(JSON))
