"""Input drift: count served feature values into the model card's reference bins.

The bins are those of `model.reference.assign_bins` (the function training used to compute
the reference ratios), so bin "3" means the same interval on both sides. Serving bins every
feature of a request at once (`BinTable`, tested equal to `assign_bins` value by value)
because one `searchsorted` per feature per request was most of monitoring's cost, and adds a
request's counts to one flat array (`monitoring.drift_store`) because one prometheus_client
write per (feature, bin) was most of the rest. Prometheus turns the counters and the exported
ratios into a PSI per feature (recording rules, prometheus/).
"""
from bisect import bisect_left

import numpy as np

from monitoring import metrics
from monitoring.drift_store import DriftStore, Layout


class BinTable:
    """The reference edges of several features, padded into one matrix for one-pass binning.

    `bins(rows)` equals ``assign_bins(edges_j, rows[:, j])`` for every column j (NaN and
    infinities included): the bin index is the number of edges strictly below the value, and
    NaN, which numpy sorts above everything, lands in the last bin like +inf.

    Two exact tricks keep it to a few numpy calls: padding edges are +inf, which no value is
    strictly above, and NaN is replaced by +inf (``fmin``), which is above every real edge.
    `row_bins` bins a single row in plain Python (the /predict case), with the same result.
    """

    # From this many rows on, one comparison pass per edge rank beats the 3-D broadcast,
    # whose sum over a short last axis costs more per element than a few full-width passes.
    COLUMNWISE_FROM = 48  # measured crossover (28 features, <= 9 edges): ~40-60 rows

    def __init__(self, edges_per_column):
        width = max((len(edges) for edges in edges_per_column), default=0)
        self.edges = np.full((len(edges_per_column), width), np.inf, dtype="float64")
        for row, edges in enumerate(edges_per_column):
            self.edges[row, :len(edges)] = edges
        # edge column w of every feature, contiguous, for the row-heavy path
        self.edges_by_rank = np.ascontiguousarray(self.edges.T)
        # counts of edges below a value: uint8 while they fit (at most 255 edges per feature)
        count_dtype = np.uint8 if width < 256 else np.intp
        self.ones = np.ones(width, dtype=count_dtype)  # sums a row of comparisons, by matmul
        self.count_dtype = count_dtype
        # the single-row path's edges: Python floats, compared exactly as numpy's float64
        self.edge_lists = [[float(edge) for edge in edges] for edges in edges_per_column]

    def bins(self, values: np.ndarray) -> np.ndarray:
        """(n, n_columns) bin indices (an integer array) of `values` (n, n_columns)."""
        values = np.fmin(values, np.inf)  # NaN -> +inf: both go to the last bin
        if values.shape[0] < self.COLUMNWISE_FROM:
            # matmul with ones: the cheapest sum of a short last axis (add.reduce costs more)
            return (values[:, :, None] > self.edges).view(np.uint8) @ self.ones
        counts = np.zeros(values.shape, dtype=self.count_dtype)
        above = np.empty(values.shape, dtype=bool)
        for edges in self.edges_by_rank:
            np.greater(values, edges, out=above)
            counts += above
        return counts

    def row_bins(self, row) -> list:
        """``bins(np.array([row]))[0]`` as a list, for one row given as a list of floats.

        One `bisect_left` (the number of edges strictly below the value, as searchsorted
        side="left") per column. For one row numpy's fixed per-call overhead dominates, more
        so inside a request with cold caches: `bins` cost ~12 µs there against ~3 µs in a
        tight loop. NaN, below nothing for bisect, goes to the last bin.
        """
        return [bisect_left(edges, value) if value == value else len(edges)
                for value, edges in zip(row, self.edge_lists)]


class DriftCounter:
    """Counts each served row's features into their reference bins.

    The counts of every (feature, bin) sit in one flat array (`monitoring.drift_store`):
    feature j's bin b is position ``offsets_[j] + b``, so a batch's counts are one bincount
    added at once, a single row's one increment per feature, and
    `monitoring.drift_collector` exports them as model_feature_bin_total.

    Parameters
    ----------
    reference : dict
        The card's ``reference`` mapping: feature -> {"edges": [...], "ratios": [...]}.
    feature_names : sequence of str
        Column order of the rows that `observe` receives.
    directory : str or None
        The multiprocess metrics directory (Config.PROMETHEUS_MULTIPROC_DIR): each process
        counts into its own file there. None: in memory (single process).
    """

    def __init__(self, reference: dict, feature_names, directory: str | None = None):
        # a feature without reference bins cannot drift-alert: skipped, never guessed
        self.columns_ = [column for column, name in enumerate(feature_names) if name in reference]
        edges = [np.asarray(reference[feature_names[c]]["edges"], dtype="float64")
                 for c in self.columns_]
        self.table_ = BinTable(edges)
        labels, offsets = [], []
        for column, feature_edges in zip(self.columns_, edges):
            offsets.append(len(labels))
            labels += [(feature_names[column], str(b)) for b in range(feature_edges.size + 1)]
        self.offsets_ = np.asarray(offsets, dtype="int64")
        self.offset_list_ = offsets  # the single-row path's, as Python ints
        self.store_ = DriftStore(Layout(labels), directory) if labels else None
        # every column binned (the usual case): no fancy-indexed copy of the rows per request
        self.all_columns_ = self.columns_ == list(range(len(feature_names)))

    def observe(self, rows: np.ndarray) -> None:
        """Count every value of `rows` (n, n_features) into this process's counts array.

        The counts are written at once, into a shared memory map under gunicorn. (A gunicorn
        worker's requests call this through monitoring.recorder, which holds single rows back
        and passes them here together every METRICS_FLUSH_MS.) A single row is binned and
        counted in plain Python: ~9 µs, numpy's per-call overheads ~19 µs.
        """
        if self.store_ is None or rows.shape[0] == 0:
            return
        if rows.shape[0] == 1:  # /predict: plain Python beats numpy's per-call overhead
            row = rows[0].tolist()
            if not self.all_columns_:
                row = [row[column] for column in self.columns_]
            self.store_.add_one([offset + b for offset, b in
                                 zip(self.offset_list_, self.table_.row_bins(row))])
            return
        values = rows if self.all_columns_ else rows[:, self.columns_]
        flat = self.table_.bins(values) + self.offsets_
        self.store_.add(np.bincount(flat.ravel(), minlength=len(self.store_.layout)))


def export_reference_ratios(reference: dict) -> None:
    """Export model_feature_reference_ratio{feature, bin}: the training share of each bin."""
    for name, bins in reference.items():
        for index, ratio in enumerate(bins["ratios"]):
            metrics.REFERENCE_RATIO.labels(feature=name, bin=str(index)).set(float(ratio))
