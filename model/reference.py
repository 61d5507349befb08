"""Reference distribution of a feature: quantile bin edges and the training share of each bin.

One binning function serves both sides: training computes the ratios with it and monitoring
counts served values with it, so a bin index means the same thing everywhere.
"""

import numpy as np

MAX_BINS = 10


def assign_bins(edges, values) -> np.ndarray:
    """Bin index of each value: bins are (-inf, e1], (e1, e2], ..., (ek, inf).

    Parameters
    ----------
    edges : sequence of float
        Strictly increasing bin edges (k <= 9).
    values : array-like of float
        Values to bin.

    Returns
    -------
    ndarray of int
        Index in 0..k for each value.
    """
    return np.searchsorted(
        np.asarray(edges, dtype="float64"), np.asarray(values, dtype="float64"), side="left"
    )


def build_reference(column) -> dict:
    """Quantile edges (at most MAX_BINS bins) and the share of ``column`` in each bin.

    Edges are actual data values (``inverted_cdf`` quantiles), de-duplicated, and an edge equal to
    the column's maximum is dropped, so every bin holds training rows and every ratio is > 0
    (a zero reference share would make the PSI infinite). A constant column gives one bin.

    Parameters
    ----------
    column : array-like of float
        Training values of one feature, no NaN.

    Returns
    -------
    dict
        ``{"edges": [e1..ek], "ratios": [r0..rk]}`` with k <= MAX_BINS - 1 and sum(ratios) == 1.
    """
    values = np.asarray(column, dtype="float64")
    if values.size == 0:
        raise ValueError("cannot build a reference distribution from an empty column")
    quantiles = np.linspace(0, 1, MAX_BINS + 1)[1:-1]
    edges = np.unique(np.quantile(values, quantiles, method="inverted_cdf"))
    edges = edges[edges < values.max()]
    counts = np.bincount(assign_bins(edges, values), minlength=len(edges) + 1)
    return {"edges": [float(e) for e in edges], "ratios": [float(c) for c in counts / values.size]}
