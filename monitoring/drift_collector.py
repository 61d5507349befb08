"""The collector exporting `model_feature_bin_total{feature, bin}` from the drift stores.

The counts are not prometheus_client metrics (monitoring.drift_store keeps them as flat
arrays), so this collector turns them into the same counter family Prometheus scraped when
each (feature, bin) was a counter child: same name, help, labels and values, every bin of
every loaded layout present from model load on (zeros included).

- With a directory (the sidecar exporter in the gunicorn master, next to `LockedCollector`):
  the sum over every process's counts file and the archive, read under
  `monitoring.compaction.LOCK` so a scrape during a dead worker's fold counts it once.
- Without (single process, registered once in the default REGISTRY by `init_metrics`): this
  process's in-memory arrays.
"""
from monitoring import drift_store
from monitoring.compaction import LOCK
from monitoring.metrics import FEATURE_BIN_HELP, FEATURE_BIN_NAME

LABELS = ("feature", "bin")


class DriftCollector:
    """Yields one counter family, model_feature_bin_total, summed over processes and layouts."""

    def __init__(self, directory: str | None = None):
        self.directory = directory

    def _family(self):
        from prometheus_client.core import CounterMetricFamily

        return CounterMetricFamily(FEATURE_BIN_NAME, FEATURE_BIN_HELP, labels=LABELS)

    def describe(self):
        """The family without samples (the registry checks names without reading files)."""
        return [self._family()]

    def collect(self):
        if self.directory is None:
            totals = drift_store.memory_totals()
        else:
            with LOCK:
                totals = drift_store.read_totals(self.directory)
        family = self._family()
        for labels, count in totals.items():
            family.add_metric(labels, float(count))
        return [family]
