"""Records drawn like the training data, drift, records files, and each request kind."""
import json
import math
import random
from collections import Counter

import pytest

from load.payloads import RequestFactory
from load.records import RecordSampler, card_features, model_card, read_records
from tests.fixtures.stack import FAKE_CARD

FEATURES = FAKE_CARD["features"]


def sampler(drift=None, records=None, seed=0, card=FAKE_CARD):
    return RecordSampler(card, random.Random(seed), drift, records)


def shares(values, edges):
    """Served share of each reference bin (bin = number of edges strictly below the value)."""
    counts = Counter(sum(value > edge for edge in edges) for value in values)
    return [counts[i] / len(values) for i in range(len(edges) + 1)]


def psi(p, q):
    p, q = [max(x, 1e-4) for x in p], [max(x, 1e-4) for x in q]
    return sum((a - b) * math.log(a / b) for a, b in zip(p, q))


def test_records_stay_in_the_seen_domain():
    s = sampler()
    for _ in range(500):
        record = s.record()
        assert list(record) == ["lum", "vma", "lat"]
        assert record["lum"] in FEATURES[0]["codes"]
        assert 20 <= record["vma"] <= 90 and isinstance(record["vma"], int)
        assert 42.0 <= record["lat"] <= 51.0


@pytest.mark.parametrize("feature", ["lum", "vma"])
def test_undrifted_records_follow_the_reference_bins(feature):
    """So plain load does not light the drift alert: PSI against the card stays near 0."""
    s = sampler(seed=1)
    reference = FAKE_CARD["reference"][feature]
    served = shares([s.record()[feature] for _ in range(4000)], reference["edges"])
    assert served == pytest.approx(reference["ratios"], abs=0.03)
    assert psi(served, reference["ratios"]) < 0.01


def test_drift_pushes_psi_over_the_alert_threshold():
    reference = FAKE_CARD["reference"]["vma"]
    s = sampler({"vma": 40}, seed=2)
    served = shares([s.record()["vma"] for _ in range(2000)], reference["edges"])
    assert psi(served, reference["ratios"]) > 0.25


def test_without_reference_values_are_uniform_over_the_domain():
    card = {"features": FEATURES}
    s = sampler(card=card, seed=3)
    values = [s.record()["vma"] for _ in range(3000)]
    assert min(values) == 20 and max(values) == 90
    assert abs(sum(v <= 55 for v in values) / 3000 - 0.5) < 0.05


def test_numeric_drift_shifts_and_clamps_to_the_api_domain():
    plain = sampler(seed=3).record()["vma"]
    assert sampler({"vma": 30}, seed=3).record()["vma"] == min(130, plain + 30)
    assert all(sampler({"vma": 500}, seed=i).record()["vma"] == 130 for i in range(20))


def test_categorical_drift_moves_along_the_codes():
    s = sampler({"lum": 10})
    assert {s.record()["lum"] for _ in range(50)} == {5}


def test_unknown_drift_feature_is_refused():
    with pytest.raises(ValueError, match="unknown feature.*speed"):
        sampler({"speed": 3})


def test_records_file(tmp_path):
    path = tmp_path / "records.jsonl"
    path.write_text('{"lum": 1, "vma": 50, "lat": 45.0}\n\n{"lum": 2, "vma": 70, "lat": 44.0}\n')
    records = read_records(str(path))
    s = sampler({"vma": 10}, records)
    assert {s.record()["vma"] for _ in range(40)} == {60, 80}
    path.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match="records.jsonl:1: expected a JSON object"):
        read_records(str(path))


def test_card_accepts_card_or_wrapped_card():
    assert card_features(FAKE_CARD) == FEATURES
    assert model_card({"card": FAKE_CARD}) is FAKE_CARD
    with pytest.raises(ValueError, match="no 'features'"):
        card_features({"name": "x"})


def test_invalid_requests_cover_every_client_error_flavour():
    factory = RequestFactory(sampler())
    specs = [factory.build("invalid") for _ in range(14)]
    kinds = Counter(spec.kind for spec in specs)
    assert kinds == {f"invalid:{k}": 2 for k in (
        "out_of_range", "missing_field", "unknown_field", "malformed_json",
        "wrong_content_type", "wrong_method", "batch_over_cap")}
    statuses = {spec.kind: set(spec.expected) for spec in specs}
    assert statuses["invalid:malformed_json"] == {400}
    assert statuses["invalid:wrong_content_type"] == {415}
    assert statuses["invalid:wrong_method"] == {405}
    assert statuses["invalid:out_of_range"] == {422}
    assert statuses["invalid:batch_over_cap"] == {413}


def test_batch_over_cap_sends_one_record_more_than_the_cap():
    factory = RequestFactory(sampler(), max_batch_size=7)
    spec = next(s for s in (factory.build("invalid") for _ in range(7))
                if s.kind == "invalid:batch_over_cap")
    assert spec.path == "/predict/batch" and len(json.loads(spec.body)["records"]) == 8


def test_valid_batch_and_notfound_requests():
    factory = RequestFactory(sampler(), batch_size=4)
    valid, batch, missing = (factory.build(k) for k in ("valid", "batch", "notfound"))
    assert (valid.method, valid.path, set(valid.expected)) == ("POST", "/predict", {200})
    assert set(json.loads(valid.body)) == {"lum", "vma", "lat"}
    assert len(json.loads(batch.body)["records"]) == 4 and batch.path == "/predict/batch"
    assert missing.method == "GET" and set(missing.expected) == {404}
