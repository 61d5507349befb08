"""Drift: the one-pass bin table equals model.reference.assign_bins, value by value, and
DriftCounter adds exactly those counts to model_feature_bin_total's children."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from model.reference import assign_bins
from monitoring.drift import BinTable, DriftCounter
from monitoring.recorder import BufferedRecorder, Recorder

# the counters exist once an app was built (init_metrics)
pytestmark = pytest.mark.usefixtures("app")

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
edge_lists = st.lists(finite, min_size=0, max_size=9, unique=True).map(sorted)
# values include exact edges' neighbourhood through `finite`, plus NaN and infinities
served = st.one_of(finite, st.just(float("nan")), st.just(float("inf")),
                   st.just(float("-inf")))


@settings(max_examples=300, deadline=None)
@given(edges=st.lists(edge_lists, min_size=1, max_size=6), data=st.data())
def test_bin_table_equals_assign_bins_per_column(edges, data):
    n = data.draw(st.integers(min_value=0, max_value=60))
    # half of the values are taken from the edges themselves: the (e_i, e_i+1] boundaries
    pool = st.one_of(served, st.sampled_from([e for column in edges for e in column] or [0.0]))
    values = np.array([[data.draw(pool) for _ in edges] for _ in range(n)],
                      dtype="float64").reshape(n, len(edges))
    got = BinTable([np.asarray(e, dtype="float64") for e in edges]).bins(values)
    for column, column_edges in enumerate(edges):
        assert got[:, column].tolist() == assign_bins(column_edges, values[:, column]).tolist()


def bin_samples(prefix):
    """{(feature, bin): value} of model_feature_bin_total in the default registry."""
    return {(s.labels["feature"], s.labels["bin"]): s.value
            for family in REGISTRY.collect() for s in family.samples
            if s.name == "model_feature_bin_total" and s.labels["feature"].startswith(prefix)}


def random_reference(prefix, rng, widths=(0, 1, 3, 9, 9, 4)):
    """Features `prefix_0..` with sorted random edges (0 edges: a single bin)."""
    return {f"{prefix}_{j}": {"edges": sorted(rng.normal(size=k).round(2).tolist()),
                              "ratios": [1 / (k + 1)] * (k + 1)}
            for j, k in enumerate(widths)}


def expected_counts(reference, rows):
    """{(feature, bin): count} by model.reference.assign_bins, every bin present."""
    expected = {}
    for column, (name, bins) in enumerate(reference.items()):
        counts = np.bincount(assign_bins(bins["edges"], rows[:, column]),
                             minlength=len(bins["edges"]) + 1)
        expected.update({(name, str(b)): float(c) for b, c in enumerate(counts)})
    return expected


def test_counts_exactly_and_skips_features_without_reference():
    reference = {"drift_test_a": {"edges": [1.0, 2.0], "ratios": [0.3, 0.3, 0.4]},
                 "drift_test_c": {"edges": [0.5], "ratios": [0.5, 0.5]}}
    counter = DriftCounter(reference, ("drift_test_a", "drift_test_b", "drift_test_c"))
    assert set(bin_samples("drift_test_")) == {("drift_test_a", "0"), ("drift_test_a", "1"),
                                               ("drift_test_a", "2"), ("drift_test_c", "0"),
                                               ("drift_test_c", "1")}  # zeros from the start
    rows = np.array([[0.0, 9.0, 0.5], [1.0, 9.0, 0.6], [1.5, 9.0, 0.7], [5.0, 9.0, 0.1]])
    counter.count(rows)
    counter.count(rows[:1])
    counter.count(rows[:0])  # an empty batch writes nothing
    assert bin_samples("drift_test_") == {
        ("drift_test_a", "0"): 3.0, ("drift_test_a", "1"): 1.0, ("drift_test_a", "2"): 1.0,
        ("drift_test_c", "0"): 3.0, ("drift_test_c", "1"): 2.0}


@pytest.mark.parametrize("recorder_class", [Recorder, BufferedRecorder])
def test_single_rows_and_batches_count_the_same_through_either_recorder(recorder_class):
    rng = np.random.default_rng(5)
    prefix = f"drift_test_{recorder_class.__name__}"
    reference = random_reference(prefix, np.random.default_rng(5))
    counter = DriftCounter(reference, list(reference))
    rows = rng.normal(size=(300, len(reference))).round(2)  # rounding: values on the edges
    rows[::17, 2] = np.nan  # a missing value: the last bin
    recorder = recorder_class()
    for start in range(0, 200):
        recorder.count_rows(counter, rows[start:start + 1])
    recorder.count_rows(counter, rows[200:])
    recorder.flush()
    assert bin_samples(prefix) == expected_counts(reference, rows)


def test_a_second_model_adds_to_the_first_models_counts():
    """A model swap (SIGHUP) with other bins: the old counts stay, shared labels add up."""
    old = DriftCounter({"drift_test_swap": {"edges": [0.0], "ratios": [0.5, 0.5]}},
                       ["drift_test_swap"])
    new = DriftCounter({"drift_test_swap": {"edges": [-1.0, 1.0], "ratios": [0.3, 0.4, 0.3]}},
                       ["drift_test_swap"])
    old.count(np.array([[-5.0], [5.0]]))
    new.count(np.array([[-5.0], [0.5], [5.0]]))
    assert bin_samples("drift_test_swap") == {
        ("drift_test_swap", "0"): 2.0, ("drift_test_swap", "1"): 2.0,
        ("drift_test_swap", "2"): 1.0}
