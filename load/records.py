"""Realistic records: drawn to match the training distribution in the model card (or read
from a JSON-lines file), with optional drift."""
from __future__ import annotations

import json
import math
import random


def card_features(model_document: dict) -> list[dict]:
    """The card's feature list from a GET /model answer (the card itself or wrapping it)."""
    return model_card(model_document)["features"]


def model_card(model_document: dict) -> dict:
    """The model card in a GET /model answer: the document itself, or its "card" key."""
    for doc in (model_document, model_document.get("card") or {}):
        if isinstance(doc.get("features"), list) and doc["features"]:
            return doc
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
    """Draws valid records whose features follow the training distribution.

    A feature with reference bins in the card (edges e1..ek, training shares r0..rk) gets a
    bin chosen with those shares, then a value inside it, so undrifted traffic has a PSI near
    0 and only --drift moves the drift panels. Without reference bins: uniform over the
    codes or the range seen in training. Drift adds SHIFT to a numeric feature (clamped to
    the API's domain, so drifted records are still served and binned) and moves a
    categorical one SHIFT places along its codes.
    """

    def __init__(self, card: dict, rng: random.Random, drift: dict[str, float] | None = None,
                 records: list[dict] | None = None):
        self.features = {spec["name"]: spec for spec in card["features"]}
        unknown = sorted(set(drift or {}) - set(self.features))
        if unknown:
            raise ValueError(f"--drift: unknown feature(s) {', '.join(unknown)}")
        self.order = [spec["name"] for spec in card["features"]]
        self.reference = card.get("reference") or {}
        self.rng, self.drift, self.records = rng, drift or {}, records
        # features drawn uniformly for want of bins (the CLI warns: they look drifted)
        self.without_reference = [name for name in self.order
                                  if not self.reference.get(name, {}).get("ratios")]

    def _draw(self, spec: dict):
        low = _first(spec.get("seen_min"), spec.get("minimum"), -math.inf)
        high = _first(spec.get("seen_max"), spec.get("maximum"), math.inf)
        reference = self.reference.get(spec["name"])
        if reference and sum(reference["ratios"]) > 0:
            edges = [-math.inf, *reference["edges"], math.inf]
            (i,) = self.rng.choices(range(len(reference["ratios"])), reference["ratios"])
            # bin i is (edges[i], edges[i+1]]; keep it inside the domain seen in training
            value = self._inside(spec, max(edges[i], low), min(edges[i + 1], high),
                                 edges[i] < low)
            if value is not None:
                return value
        value = self._inside(spec, low, high, True)
        if value is None:
            raise ValueError(f"model card: feature {spec['name']} has no codes or bounded range")
        return value

    def _inside(self, spec: dict, low: float, high: float, closed_low: bool):
        """A value in (low, high] ([low, high] when closed_low), None if there is none."""
        if spec.get("codes"):
            codes = [c for c in spec["codes"]
                     if low <= c <= high and (closed_low or c != low)]
            return self.rng.choice(codes) if codes else None
        if spec.get("dtype") == "int":
            first = math.ceil(low) if closed_low else math.floor(low) + 1
            last = math.floor(high)
            return self.rng.randint(first, last) if first <= last else None
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            return None
        return round(self.rng.uniform(low, high), 6)

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
            return self.shifted(self.rng.choice(self.records))
        return self.shifted({name: self._draw(self.features[name]) for name in self.order})

    def shifted(self, record: dict) -> dict:
        """A copy of ``record`` with the drift applied; unknown (None) values stay unknown."""
        record = dict(record)
        for name, shift in self.drift.items():
            if record.get(name) is not None:
                record[name] = self._shift(self.features[name], record[name], shift)
        return record


def _first(*values):
    return next(value for value in values if value is not None)
