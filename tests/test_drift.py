"""Drift: the one-pass bin table equals model.reference.assign_bins, value by value, and the
flat counts (in memory or one file per process) export exactly those counts."""
import os
import signal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from model.reference import assign_bins
from monitoring import drift_store
from monitoring.compaction import compact_dead_worker
from monitoring.drift import BinTable, DriftCounter
from monitoring.drift_collector import DriftCollector

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
    # the single-row path (plain Python bisect), row by row
    assert [table.row_bins(row) for row in values.tolist()] == got.tolist()


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


def _samples(collector, prefix="drift_test"):
    """{(feature, bin): value} of model_feature_bin_total from `collector` (our features)."""
    return {(s.labels["feature"], s.labels["bin"]): s.value
            for family in collector.collect() for s in family.samples
            if s.name == "model_feature_bin_total" and s.labels["feature"].startswith(prefix)}


def _bin_samples(feature):
    return {b: v for (f, b), v in _samples(DriftCollector()).items() if f == feature}


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


def _random_reference(prefix, rng, widths=(0, 1, 3, 9, 9, 4)):
    """Features `prefix_0..` with sorted random edges (0 edges: a single bin)."""
    return {f"{prefix}_{j}": {"edges": sorted(rng.normal(size=k).round(2).tolist()),
                              "ratios": [1 / (k + 1)] * (k + 1)}
            for j, k in enumerate(widths)}


def _expected(reference, rows):
    """{(feature, bin): count} by model.reference.assign_bins, every bin present."""
    expected = {}
    for column, (name, bins) in enumerate(reference.items()):
        counts = np.bincount(assign_bins(bins["edges"], rows[:, column]),
                             minlength=len(bins["edges"]) + 1)
        expected.update({(name, str(b)): float(c) for b, c in enumerate(counts)})
    return expected


def test_single_process_collector_equals_assign_bins_counts(app):
    """What the default REGISTRY exports (the app's init_metrics registered the collector)."""
    rng = np.random.default_rng(11)
    reference = _random_reference("drift_test_single", rng)
    counter = DriftCounter(reference, list(reference))
    assert set(_samples(DriftCollector(), "drift_test_single").values()) == {0.0}  # from load
    rows = rng.normal(size=(300, len(reference))).round(2)  # rounding: values on the edges
    for start in range(0, 300, 50):
        counter.observe(rows[start:start + 1])
        counter.observe(rows[start + 1:start + 50])
    assert _samples(REGISTRY, "drift_test_single") == _expected(reference, rows)


@pytest.mark.parametrize("multiprocess", [False, True])
def test_batch_and_single_rows_count_the_same(multiprocess, tmp_path):
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(120, 6)).round(1)
    rows[::17, 2] = np.nan
    directory = str(tmp_path) if multiprocess else None
    totals = {}
    for name, chunk in (("one", 1), ("few", 7), ("many", 120)):
        reference = _random_reference(f"drift_test_{name}_{multiprocess}", np.random.default_rng(5))
        counter = DriftCounter(reference, list(reference), directory)
        for start in range(0, len(rows), chunk):
            counter.observe(rows[start:start + chunk])
        collector = DriftCollector(directory)
        totals[name] = {(f.split("_")[-1], b): v for (f, b), v in
                        _samples(collector, f"drift_test_{name}_{multiprocess}").items()}
    assert totals["one"] == totals["few"] == totals["many"]
    assert sum(totals["one"].values()) == rows.size


def _in_a_forked_child(action):
    """Run `action()` in a forked child, which then SIGKILLs itself; return the child's pid."""
    pid = os.fork()
    if pid == 0:  # the child: no cleanup, no atexit, like a killed gunicorn worker
        try:
            action()
        finally:
            os.kill(os.getpid(), signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    return pid


def test_each_forked_worker_counts_in_its_own_file_and_a_killed_ones_counts_are_folded(
        tmp_path):
    """The master builds the counter (layout file); each forked worker maps its own file on
    its first observe; a SIGKILLed worker's counts survive and fold into the archive."""
    directory = str(tmp_path)
    rng = np.random.default_rng(2)
    reference = _random_reference("drift_test_fork", rng)
    counter = DriftCounter(reference, list(reference), directory)  # built "in the master"
    key = counter.store_.layout.key
    assert os.listdir(directory) == [f"drift_{key}.json"]
    collector = DriftCollector(directory)
    assert set(_samples(collector).values()) == {0.0}  # every bin exported from model load
    rows = rng.normal(size=(40, len(reference))).round(2)
    first = _in_a_forked_child(lambda: [counter.observe(rows[i:i + 1]) for i in range(10)])
    second = _in_a_forked_child(lambda: counter.observe(rows[10:]))
    assert sorted(os.listdir(directory)) == sorted(
        [f"drift_{key}.json", f"drift_{key}_{first}.counts", f"drift_{key}_{second}.counts"])
    before = _samples(collector)
    assert before == _expected(reference, rows)

    removed = compact_dead_worker(first, directory)
    assert removed == [os.path.join(directory, f"drift_{key}_{first}.counts")]
    drift_store.fold_dead_worker(second, directory)
    assert sorted(os.listdir(directory)) == [f"drift_{key}.json", f"drift_{key}_archive.counts"]
    assert _samples(collector) == before


def test_a_new_layout_adds_to_the_old_ones_counts(tmp_path):
    """A model swap (SIGHUP) with other bins: the old counts stay exported, shared labels add."""
    directory = str(tmp_path)
    old = DriftCounter({"drift_test_swap": {"edges": [0.0], "ratios": [0.5, 0.5]}},
                       ["drift_test_swap"], directory)
    new = DriftCounter({"drift_test_swap": {"edges": [-1.0, 1.0], "ratios": [0.3, 0.4, 0.3]}},
                       ["drift_test_swap"], directory)
    assert old.store_.layout.key != new.store_.layout.key
    old.observe(np.array([[-5.0], [5.0]]))
    new.observe(np.array([[-5.0], [0.5], [5.0]]))
    assert _samples(DriftCollector(directory)) == {
        ("drift_test_swap", "0"): 2.0, ("drift_test_swap", "1"): 2.0,
        ("drift_test_swap", "2"): 1.0}


def test_the_exported_family_keeps_the_counter_contract(tmp_path):
    DriftCounter({"drift_test_help": {"edges": [0.0], "ratios": [0.5, 0.5]}},
                 ["drift_test_help"], str(tmp_path)).observe(np.array([[1.0]]))
    registry = CollectorRegistry()
    registry.register(DriftCollector(str(tmp_path)))
    text = generate_latest(registry).decode()
    assert text == (
        "# HELP model_feature_bin_total Served feature values per reference bin (bin = index "
        "from model.reference.assign_bins).\n"
        "# TYPE model_feature_bin_total counter\n"
        'model_feature_bin_total{bin="0",feature="drift_test_help"} 0.0\n'
        'model_feature_bin_total{bin="1",feature="drift_test_help"} 1.0\n')


def test_the_wipe_removes_only_drift_files(tmp_path):
    names = ["drift_abc.json", "drift_abc_12.counts", "drift_abc_archive.counts",
             "drift_abc_12.counts.tmp", "counter_1.db", "notes.txt", "drift.txt"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    drift_store.wipe(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_1.db", "drift.txt",
                                                          "notes.txt"]


def test_single_rows_held_back_by_the_buffered_recorder_count_the_same(tmp_path):
    """monitoring.recorder holds /predict rows back and bins them together at the flush."""
    from monitoring.recorder import BufferedRecorder

    rng = np.random.default_rng(7)
    reference = _random_reference("drift_test_buffered", rng)
    counter = DriftCounter(reference, list(reference), str(tmp_path))
    rows = rng.normal(size=(300, len(reference))).round(2)
    rows[5, 2] = np.nan  # a missing value: the last bin, as in the direct path
    recorder = BufferedRecorder()
    for row in rows[:250]:
        recorder.observe_rows(counter, row[np.newaxis, :])  # single rows: held back
    recorder.observe_rows(counter, rows[250:])  # a batch: counted at once
    assert drift_store.read_totals(str(tmp_path)) == _expected(reference, rows[250:])
    recorder.flush()
    assert drift_store.read_totals(str(tmp_path)) == _expected(reference, rows)
