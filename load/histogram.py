"""HDR-style log-linear latency histogram: bounded relative error, constant memory.

Why not the `hdrhistogram` PyPI package: its wheel declares `pbr` and `setuptools>=83` as
runtime dependencies, which would upgrade the service's virtualenv (and the Docker image)
for a ~60-line data structure. This one follows the same layout (HdrHistogram's buckets of
2**SUB_BITS linear sub-buckets per power of two) and is tested against exact percentiles.
"""
from __future__ import annotations

import math

SUB_BITS = 8                     # 256 sub-buckets per power of two
_HALF = 1 << (SUB_BITS - 1)      # relative error <= 1 / _HALF (0.8 %)
UNIT = 1e-6                      # values are stored as integer microseconds


def _index(value: int) -> int:
    """Flat bucket index of a non-negative integer value."""
    shift = max(0, value.bit_length() - SUB_BITS)
    return shift * _HALF + (value >> shift)


def _highest_equivalent(index: int) -> int:
    """Largest integer value that lands in bucket ``index``."""
    shift = max(0, index // _HALF - 1)
    sub = index - shift * _HALF
    return ((sub + 1) << shift) - 1


class LatencyHistogram:
    """Counts of latencies (seconds) in log-linear buckets; not thread-safe on its own."""

    relative_error = 1.0 / _HALF

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0
        self.min_units: int | None = None
        self.max_units = 0

    def record(self, seconds: float) -> None:
        """Add one latency; negative values (clock jitter) count as zero."""
        units = max(0, round(seconds / UNIT))
        index = _index(units)
        self.counts[index] = self.counts.get(index, 0) + 1
        self.total += 1
        self.max_units = max(self.max_units, units)
        self.min_units = units if self.min_units is None else min(self.min_units, units)

    def merge(self, other: "LatencyHistogram") -> None:
        """Add every count of ``other`` into this histogram."""
        for index, count in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + count
        self.total += other.total
        self.max_units = max(self.max_units, other.max_units)
        if other.min_units is not None:
            self.min_units = (other.min_units if self.min_units is None
                              else min(self.min_units, other.min_units))

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile ``q`` (0..100) in seconds, None when empty.

        Returns the top of the bucket holding the value of rank ceil(q/100 * n), capped at
        the exact maximum, so the answer is never below the true percentile and at most
        ``relative_error`` above it.
        """
        if not self.total:
            return None
        rank = max(1, math.ceil(q / 100.0 * self.total))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return min(_highest_equivalent(index), self.max_units) * UNIT
        return self.max_units * UNIT

    @property
    def max(self) -> float | None:
        """Exact largest recorded latency in seconds (microsecond resolution)."""
        return self.max_units * UNIT if self.total else None

    @property
    def min(self) -> float | None:
        """Exact smallest recorded latency in seconds (microsecond resolution)."""
        return None if self.min_units is None else self.min_units * UNIT
