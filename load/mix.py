"""Command-line traffic options: the --mix of request kinds and --drift feature shifts."""
from __future__ import annotations

KINDS = ("valid", "invalid", "notfound", "batch")
DEFAULT_MIX = "valid=0.8,invalid=0.1,notfound=0.05,batch=0.05"


def _pairs(text: str, option: str) -> list[tuple[str, float]]:
    """Split 'a=1,b=2' into [('a', 1.0), ('b', 2.0)], naming the bad item on error."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, number = item.partition("=")
        try:
            value = float(number)
        except ValueError:
            value = None
        if not sep or not name.strip() or value is None or value != value:
            raise ValueError(f"{option}: {item!r} is not NAME=NUMBER")
        pairs.append((name.strip(), value))
    names = [name for name, _ in pairs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{option}: {', '.join(duplicates)} given more than once")
    return pairs


def parse_mix(text: str) -> dict[str, float]:
    """Parse --mix into shares of each kind that sum to 1 (weights are normalised).

    Kinds left out get share 0, so ``--mix valid=1`` sends only valid predictions.
    """
    pairs = _pairs(text, "--mix")
    unknown = [name for name, _ in pairs if name not in KINDS]
    if unknown:
        raise ValueError(f"--mix: unknown kind {unknown[0]!r} (kinds: {', '.join(KINDS)})")
    if any(weight < 0 for _, weight in pairs):
        raise ValueError("--mix: weights must be >= 0")
    total = sum(weight for _, weight in pairs)
    if total <= 0:
        raise ValueError("--mix: at least one weight must be > 0")
    given = dict(pairs)
    return {kind: given.get(kind, 0.0) / total for kind in KINDS}


def parse_drift(text: str) -> dict[str, float]:
    """Parse --drift 'vma=30,hour=-6' into {feature: shift}; checked against the card later."""
    return dict(_pairs(text, "--drift")) if text else {}


class KindSequence:
    """Deterministic interleaving of kinds in exact proportion (smooth weighted round-robin).

    Random draws would put binomial noise on a short run's mix (10 % of 160 requests is
    16 +/- 4); this keeps every prefix of the sequence within one request of the target.
    """

    def __init__(self, shares: dict[str, float]) -> None:
        self.shares = {kind: share for kind, share in shares.items() if share > 0}
        self.credit = {kind: 0.0 for kind in self.shares}

    def next(self) -> str:
        """The kind of the next request."""
        for kind, share in self.shares.items():
            self.credit[kind] += share
        kind = max(self.credit, key=self.credit.__getitem__)
        self.credit[kind] -= 1.0
        return kind
