"""Input drift: served feature values counted into the model card's reference bins.

The bins are those of `model.reference.assign_bins` (the function training used to compute the
reference ratios), so bin "3" means the same interval on both sides. `BinTable` bins every
feature of many rows in a few numpy passes; `DriftCounter` adds the counts into the
`model_feature_bin_total{feature, bin}` counter children. Prometheus turns the counters and
the exported ratios into a PSI per feature (recording rules, prometheus/).
"""
import numpy as np

from monitoring import metrics


class BinTable:
    """The reference edges of several features, padded into one matrix for one-pass binning.

    `bins(rows)` equals ``assign_bins(edges_j, rows[:, j])`` for every column j (NaN and
    infinities included): the bin index is the number of edges strictly below the value, and
    NaN, which numpy sorts above everything, lands in the last bin like +inf. Padding edges
    are +inf, which no value is strictly above, and NaN is replaced by +inf (``fmin``).
    """

    def __init__(self, edges_per_column):
        width = max((len(edges) for edges in edges_per_column), default=0)
        self.edges = np.full((len(edges_per_column), width), np.inf, dtype="float64")
        for row, edges in enumerate(edges_per_column):
            self.edges[row, :len(edges)] = edges

    def bins(self, values: np.ndarray) -> np.ndarray:
        """(n, n_columns) bin indices of `values` (n, n_columns)."""
        values = np.fmin(values, np.inf)  # NaN -> +inf: both go to the last bin
        counts = np.zeros(values.shape, dtype=np.intp)
        for rank in range(self.edges.shape[1]):  # one pass per edge rank, over every row
            counts += values > self.edges[:, rank]
        return counts


class DriftCounter:
    """Counts served rows' feature values into their reference bins.

    Feature j's bin b is the flat position ``offsets_[j] + b``; `count` bins the rows, adds up
    each position with one bincount and increments the counter child of every position that
    changed. The children exist from model load on, so every bin is exported, zeros included.

    Parameters
    ----------
    reference : dict
        The card's ``reference`` mapping: feature -> {"edges": [...], "ratios": [...]}.
    feature_names : sequence of str
        Column order of the rows that `count` receives.
    """

    def __init__(self, reference: dict, feature_names):
        # a feature without reference bins cannot drift-alert: skipped, never guessed
        self.columns_ = [column for column, name in enumerate(feature_names) if name in reference]
        edges = [np.asarray(reference[feature_names[c]]["edges"], dtype="float64")
                 for c in self.columns_]
        self.table_ = BinTable(edges)
        self.children_ = []
        offsets = []
        for column, feature_edges in zip(self.columns_, edges):
            offsets.append(len(self.children_))
            self.children_ += [metrics.FEATURE_BIN.labels(feature=feature_names[column], bin=str(b))
                               for b in range(feature_edges.size + 1)]
        self.offsets_ = np.asarray(offsets, dtype="int64")

    def count(self, rows: np.ndarray) -> None:
        """Add every value of `rows` (n, n_features) to its bin's counter."""
        if not self.children_ or rows.shape[0] == 0:
            return
        flat = self.table_.bins(rows[:, self.columns_]) + self.offsets_
        counts = np.bincount(flat.ravel(), minlength=len(self.children_))
        for position in np.flatnonzero(counts).tolist():
            self.children_[position].inc(int(counts[position]))


def export_reference_ratios(reference: dict) -> None:
    """Export model_feature_reference_ratio{feature, bin}: the training share of each bin."""
    for name, bins in reference.items():
        for index, ratio in enumerate(bins["ratios"]):
            metrics.REFERENCE_RATIO.labels(feature=name, bin=str(index)).set(float(ratio))
