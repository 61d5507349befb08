"""The prometheus_client internals this project relies on, in one place (checked on 0.26.0).

prometheus_client has no public way to add several observations to a histogram at once, nor
to merge one process's multiprocess file into another. The buffered recorder
(monitoring.recorder) needs the first, the multiprocess-directory compaction
(monitoring.compaction) the second. Everything else uses the public API.
tests/test_prometheus_compat.py fails when any of this stops matching the library.
"""
from prometheus_client.mmap_dict import MmapedDict


def bucket_bounds(histogram) -> list:
    """The upper bounds of a histogram (child)'s buckets, +Inf last, as `observe` uses them."""
    return histogram._upper_bounds


def add_observations(histogram, bucket_counts: dict, total: float) -> None:
    """What `histogram.observe(v)` for many values does, in one write per bucket.

    `bucket_counts` maps a bucket index (into `bucket_bounds`) to how many values fell in it;
    `total` is the sum of those values.
    """
    histogram._sum.inc(total)
    for index, count in bucket_counts.items():
        histogram._buckets[index].inc(count)


def merge_file(archive_path: str, source_path: str, fold) -> None:
    """Fold every value of the multiprocess file `source_path` into `archive_path`.

    `fold(old, new)` combines a key's value already in the archive with the source's.
    """
    values = MmapedDict.read_all_values_from_file(source_path)
    archive = MmapedDict(archive_path)
    try:
        existing = {key: value for key, value, _ in archive.read_all_values()}
        for key, value, timestamp, _ in values:
            merged = fold(existing[key], value) if key in existing else value
            archive.write_value(key, merged, timestamp)
    finally:
        archive.close()
