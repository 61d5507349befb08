"""Input drift: count served feature values into the model card's reference bins.

The bins are those of `model.reference.assign_bins` (the function training used to compute
the reference ratios), so bin "3" means the same interval on both sides. Serving bins every
feature of a request at once (`BinTable`, tested equal to `assign_bins` value by value)
because one `searchsorted` per feature per request was most of monitoring's cost. Prometheus
turns the counters and the exported ratios into a PSI per feature (recording rules,
prometheus/).
"""
import numpy as np

from monitoring import metrics


class BinTable:
    """The reference edges of several features, padded into one matrix for one-pass binning.

    `bins(rows)` equals ``assign_bins(edges_j, rows[:, j])`` for every column j (NaN and
    infinities included): the bin index is the number of edges a value is not <= to, i.e. the
    count of edges strictly below it, with NaN above every edge as numpy sorts it.
    """

    def __init__(self, edges_per_column):
        width = max((len(edges) for edges in edges_per_column), default=0)
        self.edges = np.zeros((len(edges_per_column), width), dtype="float64")
        self.real = np.zeros((len(edges_per_column), width), dtype=bool)  # padding excluded
        for row, edges in enumerate(edges_per_column):
            self.edges[row, :len(edges)] = edges
            self.real[row, :len(edges)] = True

    def bins(self, values: np.ndarray) -> np.ndarray:
        """(n, n_columns) bin indices of `values` (n, n_columns)."""
        above = ~(values[:, :, None] <= self.edges[None, :, :]) & self.real[None, :, :]
        return above.sum(axis=2)


class DriftCounter:
    """Counts each served row's features into their reference bins.

    Parameters
    ----------
    reference : dict
        The card's ``reference`` mapping: feature -> {"edges": [...], "ratios": [...]}.
    feature_names : sequence of str
        Column order of the rows that `observe` receives.
    """

    def __init__(self, reference: dict, feature_names):
        # a feature without reference bins cannot drift-alert: skipped, never guessed
        self.columns_ = [column for column, name in enumerate(feature_names) if name in reference]
        edges = [np.asarray(reference[feature_names[c]]["edges"], dtype="float64")
                 for c in self.columns_]
        self.table_ = BinTable(edges)
        # Every (feature, bin) counter child resolved once, at model load, in one flat list:
        # feature j's bin b is child offsets_[j] + b, so a request's counts are one bincount.
        self.children_ = []
        offsets = []
        for column, feature_edges in zip(self.columns_, edges):
            offsets.append(len(self.children_))
            name = feature_names[column]
            self.children_ += [metrics.FEATURE_BIN.labels(feature=name, bin=str(b))
                               for b in range(feature_edges.size + 1)]
        self.offsets_ = np.asarray(offsets, dtype="int64")
        # every column binned (the usual case): no fancy-indexed copy of the rows per request
        self.all_columns_ = self.columns_ == list(range(len(feature_names)))

    def observe(self, rows: np.ndarray) -> None:
        """Count every value of `rows` (n, n_features): one binning pass, one write per bin hit.

        Each counter is incremented by its exact count at once (nothing is held back in
        memory), so a worker killed after the call has lost nothing.
        """
        if not self.columns_ or rows.shape[0] == 0:
            return
        values = rows if self.all_columns_ else rows[:, self.columns_]
        flat = self.table_.bins(values) + self.offsets_
        counts = np.bincount(flat.ravel(), minlength=len(self.children_))
        hit = np.flatnonzero(counts)
        children = self.children_
        for index, count in zip(hit.tolist(), counts[hit].tolist()):
            children[index].inc(count)


def export_reference_ratios(reference: dict) -> None:
    """Export model_feature_reference_ratio{feature, bin}: the training share of each bin."""
    for name, bins in reference.items():
        for index, ratio in enumerate(bins["ratios"]):
            metrics.REFERENCE_RATIO.labels(feature=name, bin=str(index)).set(float(ratio))
