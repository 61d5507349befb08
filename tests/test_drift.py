"""Drift binning: the one-pass bin table equals model.reference.assign_bins, value by value."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from model.reference import assign_bins
from monitoring.drift import BinTable, DriftCounter

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
edge_lists = st.lists(finite, min_size=0, max_size=9, unique=True).map(sorted)
# values include exact edges' neighbourhood through `finite`, plus NaN and infinities
served = st.one_of(finite, st.just(float("nan")), st.just(float("inf")),
                   st.just(float("-inf")))


@settings(max_examples=300, deadline=None)
@given(edges=st.lists(edge_lists, min_size=1, max_size=6), data=st.data())
def test_bin_table_equals_assign_bins_per_column(edges, data):
    n = data.draw(st.integers(min_value=0, max_value=5))
    # half of the values are taken from the edges themselves: the (e_i, e_i+1] boundaries
    pool = st.one_of(served, st.sampled_from([e for column in edges for e in column] or [0.0]))
    values = np.array([[data.draw(pool) for _ in edges] for _ in range(n)],
                      dtype="float64").reshape(n, len(edges))
    table = BinTable([np.asarray(e, dtype="float64") for e in edges])
    # both code paths, whatever n: the 3-D broadcast (few rows) and one pass per edge rank
    table.COLUMNWISE_FROM = data.draw(st.sampled_from([0, 10**9]))
    got = table.bins(values)
    for column, column_edges in enumerate(edges):
        assert got[:, column].tolist() == assign_bins(column_edges, values[:, column]).tolist()


def test_bin_table_paths_agree_around_the_switch():
    """The row count that picks the path changes nothing: one row, the switch, a big batch."""
    rng = np.random.default_rng(3)
    edges = [np.sort(rng.normal(size=k)) for k in (0, 1, 4, 9, 9)]
    table = BinTable(edges)
    for n in (1, table.COLUMNWISE_FROM - 1, table.COLUMNWISE_FROM, 1000):
        values = rng.normal(size=(n, len(edges)))
        values[rng.random(values.shape) < 0.05] = np.nan
        values[:, 3] = np.where(rng.random(n) < 0.3, edges[3][rng.integers(0, 4, n)],
                                values[:, 3])  # exact edges: the (e_i, e_i+1] boundary
        got = table.bins(values)
        for column, column_edges in enumerate(edges):
            assert got[:, column].tolist() == assign_bins(column_edges, values[:, column]).tolist()


def _bin_samples(feature):
    return {s.labels["bin"]: s.value for m in REGISTRY.collect() for s in m.samples
            if s.name == "model_feature_bin_total" and s.labels["feature"] == feature}


def test_drift_counter_counts_exactly_and_skips_features_without_reference():
    reference = {"drift_test_a": {"edges": [1.0, 2.0], "ratios": [0.3, 0.3, 0.4]},
                 "drift_test_c": {"edges": [0.5], "ratios": [0.5, 0.5]}}
    counter = DriftCounter(reference, ("drift_test_a", "drift_test_b", "drift_test_c"))
    rows = np.array([[0.0, 9.0, 0.5], [1.0, 9.0, 0.6], [1.5, 9.0, 0.7], [5.0, 9.0, 0.1]])
    counter.observe(rows)
    counter.observe(rows[:1])
    counter.observe(rows[:0])  # an empty batch writes nothing
    assert _bin_samples("drift_test_a") == {"0": 3.0, "1": 1.0, "2": 1.0}
    assert _bin_samples("drift_test_c") == {"0": 3.0, "1": 2.0}
    assert _bin_samples("drift_test_b") == {}
