"""Input drift: count served feature values into the model card's reference bins.

The bins come from `model.reference.assign_bins`, the same function training used to compute
the reference ratios, so bin "3" means the same interval on both sides. Prometheus turns the
counters and the exported ratios into a PSI per feature (recording rules, prometheus/).
"""
import numpy as np

from model.reference import assign_bins
from monitoring.metrics import FEATURE_BIN, REFERENCE_RATIO


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
        self.features_ = []
        for column, name in enumerate(feature_names):
            if name not in reference:
                continue  # a feature without reference bins cannot drift-alert: skip, never guess
            edges = np.asarray(reference[name]["edges"], dtype="float64")
            # children resolved once: the hot path only increments them
            bins = [FEATURE_BIN.labels(feature=name, bin=str(b)) for b in range(edges.size + 1)]
            self.features_.append((column, edges, bins))

    def observe(self, rows: np.ndarray) -> None:
        """Count every value of `rows` (n, n_features): one vectorised binning per feature."""
        for column, edges, bins in self.features_:
            counts = np.bincount(assign_bins(edges, rows[:, column]), minlength=len(bins))
            for index in np.flatnonzero(counts):
                bins[index].inc(float(counts[index]))


def export_reference_ratios(reference: dict) -> None:
    """Export model_feature_reference_ratio{feature, bin}: the training share of each bin."""
    for name, bins in reference.items():
        for index, ratio in enumerate(bins["ratios"]):
            REFERENCE_RATIO.labels(feature=name, bin=str(index)).set(float(ratio))
