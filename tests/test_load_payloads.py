"""Records drawn from the card's domain, drift, records files, and each request kind."""
import json
import random
from collections import Counter

import pytest

from load.payloads import RecordSampler, RequestFactory, card_features, read_records
from tests.fixtures.stack import FAKE_CARD

FEATURES = FAKE_CARD["features"]


def sampler(drift=None, records=None, seed=0):
    return RecordSampler(FEATURES, random.Random(seed), drift, records)


def test_records_stay_in_the_seen_domain():
    s = sampler()
    for _ in range(500):
        record = s.record()
        assert list(record) == ["lum", "vma", "lat"]
        assert record["lum"] in FEATURES[0]["codes"]
        assert 20 <= record["vma"] <= 90 and isinstance(record["vma"], int)
        assert 42.0 <= record["lat"] <= 51.0


def test_numeric_drift_shifts_and_clamps_to_the_api_domain():
    plain = [sampler(seed=3).record()["vma"] for _ in range(1)]
    shifted = sampler({"vma": 30}, seed=3).record()["vma"]
    assert shifted == min(130, plain[0] + 30)
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


def test_card_features_accepts_card_or_wrapped_card():
    assert card_features(FAKE_CARD) == FEATURES
    assert card_features({"card": FAKE_CARD}) == FEATURES
    with pytest.raises(ValueError, match="no 'features'"):
        card_features({"name": "x"})


def test_invalid_requests_cover_every_client_error_flavour():
    factory = RequestFactory(sampler())
    specs = [factory.build("invalid") for _ in range(12)]
    kinds = Counter(spec.kind for spec in specs)
    assert kinds == {f"invalid:{k}": 2 for k in (
        "out_of_range", "missing_field", "unknown_field", "malformed_json",
        "wrong_content_type", "wrong_method")}
    statuses = {spec.kind: set(spec.expected) for spec in specs}
    assert statuses["invalid:malformed_json"] == {400}
    assert statuses["invalid:wrong_content_type"] == {415}
    assert statuses["invalid:wrong_method"] == {405}
    assert statuses["invalid:out_of_range"] == {422}


def test_valid_batch_and_notfound_requests():
    factory = RequestFactory(sampler(), batch_size=4)
    valid, batch, missing = (factory.build(k) for k in ("valid", "batch", "notfound"))
    assert (valid.method, valid.path, set(valid.expected)) == ("POST", "/predict", {200})
    assert set(json.loads(valid.body)) == {"lum", "vma", "lat"}
    assert len(json.loads(batch.body)["records"]) == 4 and batch.path == "/predict/batch"
    assert missing.method == "GET" and set(missing.expected) == {404}
