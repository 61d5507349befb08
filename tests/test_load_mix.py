"""--mix and --drift parsing and the exact interleaving of kinds."""
from collections import Counter

import pytest

from load.mix import DEFAULT_MIX, KINDS, KindSequence, parse_drift, parse_mix


def test_default_mix():
    assert parse_mix(DEFAULT_MIX) == pytest.approx(
        {"valid": 0.8, "invalid": 0.1, "notfound": 0.05, "batch": 0.05})


def test_weights_are_normalised_and_missing_kinds_are_zero():
    assert parse_mix("valid=3, invalid=1") == {"valid": 0.75, "invalid": 0.25,
                                               "notfound": 0.0, "batch": 0.0}


@pytest.mark.parametrize("text, message", [
    ("valid=0.8,bogus=0.2", "unknown kind 'bogus'"),
    ("valid", "'valid' is not NAME=NUMBER"),
    ("valid=abc", "'valid=abc' is not NAME=NUMBER"),
    ("valid=nan", "is not NAME=NUMBER"),
    ("valid=1,valid=2", "valid given more than once"),
    ("valid=-1,invalid=2", "weights must be >= 0"),
    ("valid=0", "at least one weight must be > 0"),
    ("", "at least one weight must be > 0"),
])
def test_bad_mix_names_the_problem(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_mix(text)


def test_drift_parsing():
    assert parse_drift("vma=30, hour=-6,lum=+2") == {"vma": 30.0, "hour": -6.0, "lum": 2.0}
    assert parse_drift("") == {}
    with pytest.raises(ValueError, match="'vma' is not NAME=NUMBER"):
        parse_drift("vma")
    with pytest.raises(ValueError, match="vma given more than once"):
        parse_drift("vma=1,vma=2")


@pytest.mark.parametrize("n", [20, 160, 1000])
def test_sequence_holds_the_mix_exactly_at_every_prefix(n):
    shares = parse_mix(DEFAULT_MIX)
    sequence = KindSequence(shares)
    counts = Counter()
    for i in range(1, n + 1):
        counts[sequence.next()] += 1
        for kind in KINDS:
            assert abs(counts[kind] - shares[kind] * i) < 1.0 + 1e-9, (i, kind, counts)


def test_zero_share_kind_never_sent():
    sequence = KindSequence(parse_mix("valid=1,batch=0"))
    assert {sequence.next() for _ in range(50)} == {"valid"}
