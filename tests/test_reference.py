"""model.reference: one binning for training ratios and served-value counting."""

import numpy as np
import pytest

from model.reference import MAX_BINS, assign_bins, build_reference


def test_bins_are_left_open_right_closed():
    edges = [1.0, 2.0, 5.0]
    values = [-10, 1.0, 1.5, 2.0, 4.9, 5.0, 5.1, 1e9]
    assert assign_bins(edges, values).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_no_edges_means_one_bin():
    assert assign_bins([], [1, 2, 3]).tolist() == [0, 0, 0]


def test_continuous_column_gets_at_most_ten_bins_of_about_ten_percent():
    column = np.random.default_rng(0).normal(size=10_000)
    reference = build_reference(column)
    assert len(reference["edges"]) == MAX_BINS - 1
    assert len(reference["ratios"]) == MAX_BINS
    assert np.all(np.diff(reference["edges"]) > 0)
    assert sum(reference["ratios"]) == pytest.approx(1.0)
    assert all(r == pytest.approx(0.1, abs=0.01) for r in reference["ratios"])


@pytest.mark.parametrize(
    "column",
    [[1, 2, 2, 2, 2, 2, 2, 2, 2, 2], [0] * 70 + [1] * 30, [5] * 10, list(range(3)) * 50 + [99]],
)
def test_discrete_columns_have_no_empty_bin(column):
    reference = build_reference(column)
    assert all(
        r > 0 for r in reference["ratios"]
    )  # a zero reference share would make the PSI infinite
    assert len(reference["ratios"]) == len(reference["edges"]) + 1 <= MAX_BINS
    counts = np.bincount(
        assign_bins(reference["edges"], column), minlength=len(reference["ratios"])
    )
    np.testing.assert_allclose(counts / len(column), reference["ratios"])


def test_binary_feature():
    reference = build_reference([1] * 30 + [2] * 70)
    assert reference == {"edges": [1.0], "ratios": [0.3, 0.7]}


def test_empty_column_is_an_error():
    with pytest.raises(ValueError):
        build_reference([])
