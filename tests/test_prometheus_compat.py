"""monitoring.prometheus_compat: each use of prometheus_client's internals does what the public
API would, so an upgrade that changes them fails here first."""
import os
import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry, Histogram

from monitoring import prometheus_compat

BUCKETS = (0.1, 0.5, 1.0)


def test_bucket_bounds_are_the_declared_edges_then_infinity():
    histogram = Histogram("compat_bounds", "b", buckets=BUCKETS, registry=CollectorRegistry())
    assert prometheus_compat.bucket_bounds(histogram) == [0.1, 0.5, 1.0, float("inf")]
    labelled = Histogram("compat_labelled", "l", ["x"], buckets=BUCKETS,
                         registry=CollectorRegistry())
    assert prometheus_compat.bucket_bounds(labelled.labels("a")) == [0.1, 0.5, 1.0,
                                                                     float("inf")]


def test_adding_observations_equals_observing_each_value():
    registry = CollectorRegistry()
    bulk = Histogram("compat_bulk", "b", buckets=BUCKETS, registry=registry)
    loop = Histogram("compat_loop", "l", buckets=BUCKETS, registry=registry)
    values = [0.05, 0.1, 0.3, 0.5, 0.7, 2.0, 9.0]
    for value in values:
        loop.observe(value)
    prometheus_compat.add_observations(bulk, {0: 2, 1: 2, 2: 1, 3: 2}, sum(values))
    for le in ("0.1", "0.5", "1.0", "+Inf"):
        assert registry.get_sample_value("compat_bulk_bucket", {"le": le}) == \
            registry.get_sample_value("compat_loop_bucket", {"le": le})
    assert registry.get_sample_value("compat_bulk_sum") == pytest.approx(
        registry.get_sample_value("compat_loop_sum"))
    assert registry.get_sample_value("compat_bulk_count") == len(values)


WRITE = """
from prometheus_client import Counter
Counter("compat_hits", "h", ["k"]).labels(k="a").inc({amount})
"""


def _counter_file(directory, amount):
    """Write compat_hits_total{k="a"} = amount from a fresh process; return its file."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run([sys.executable, "-c", WRITE.format(amount=amount)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (path,) = [p for p in directory.glob("counter_*.db") if "archive" not in p.name]
    return path


def _exported(directory):
    """{labels: value} the multiprocess collector reads from `directory`."""
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(directory))
    return {tuple(s.labels.items()): s.value for family in registry.collect()
            for s in family.samples if s.name == "compat_hits_total"}


def test_merging_a_process_file_into_an_archive_keeps_the_exported_sum(tmp_path):
    archive = tmp_path / "counter_archive.db"
    for amount in (3, 4):
        path = _counter_file(tmp_path, amount)
        prometheus_compat.merge_file(str(archive), str(path), lambda a, b: a + b)
        os.remove(path)
    assert _exported(tmp_path) == {(("k", "a"),): 7.0}
