"""Drift counts kept as one flat int64 array per process, file-backed under gunicorn.

A `Layout` names the flat positions: position i counts `model_feature_bin_total` with labels
``layout.labels[i]`` = (feature, bin). Serving adds a request's counts to this process's
array directly (one numpy add for a batch, one increment per feature for a single row)
instead of one locked prometheus_client write per (feature, bin).

Multiprocess mode (a directory, as under gunicorn) uses these files, all named ``drift_*``
so that prometheus_client, which reads ``*.db``, never touches them:

- ``drift_<key>.json``: the layout (written by the master when the model is loaded);
- ``drift_<key>_<pid>.counts``: one live process's counts, a shared memory map of the file
  (created by the worker on its first write; its increments are in the page cache at once,
  so a SIGKILLed worker loses nothing already counted);
- ``drift_<key>_archive.counts``: the counts of dead workers, folded in by `fold_dead_worker`.

`<key>` is a hash of the labels: two models with the same features and bin counts share a
layout, and their counts add up under the same labels, as counter children did.

Without a directory (single process: the Flask test client, tests) the array lives in memory,
one per layout for the whole process. `monitoring.drift_collector` exports the sums.
"""
import glob
import hashlib
import json
import mmap
import os
import threading

import numpy as np

PREFIX = "drift_"
ARCHIVE = "archive"
# Everything this module writes in a multiprocess directory (the start-up wipe removes these).
FILE_PATTERNS = (f"{PREFIX}*.json", f"{PREFIX}*.counts", f"{PREFIX}*.tmp")
DTYPE = np.dtype("int64")

# One lock for every add in this process: a fancy-indexed `+=` is a read-modify-write, and a
# threaded server (flask run) would otherwise lose counts. Uncontended it costs ~0.1 µs.
_ADD_LOCK = threading.Lock()
# (directory or None, layout key) -> (pid, counts array) of this process
_arrays = {}
# layout key -> Layout of every in-memory array (what the single-process collector exports)
_memory_layouts = {}


class Layout:
    """The (feature, bin) labels of the flat counts array, position by position."""

    def __init__(self, labels):
        self.labels = tuple((str(feature), str(bin_)) for feature, bin_ in labels)
        text = json.dumps(self.labels, separators=(",", ":"))
        self.key = hashlib.sha256(text.encode()).hexdigest()[:16]

    def __len__(self):
        return len(self.labels)

    @classmethod
    def read(cls, path: str) -> "Layout":
        with open(path) as handle:
            return cls(json.load(handle)["labels"])

    def write(self, directory: str) -> None:
        """Write ``drift_<key>.json`` once, atomically (a reader never sees half a file)."""
        path = layout_path(directory, self.key)
        if os.path.exists(path):
            return
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w") as handle:
            json.dump({"labels": self.labels}, handle)
        os.replace(temporary, path)


def layout_path(directory: str, key: str) -> str:
    return os.path.join(directory, f"{PREFIX}{key}.json")


def counts_path(directory: str, key: str, owner) -> str:
    """The counts file of process `owner` (a pid) or of the archive (`ARCHIVE`)."""
    return os.path.join(directory, f"{PREFIX}{key}_{owner}.counts")


class DriftStore:
    """This process's counts for one layout: in a file under `directory`, else in memory.

    Built where the model is loaded, which under gunicorn is the master before it forks: the
    array is therefore resolved lazily, on the first add in each process (a pid check).
    """

    def __init__(self, layout: Layout, directory: str | None = None):
        self.layout = layout
        self.directory = directory
        self._pid = None
        self._counts = None  # this process's array, and a memoryview of it for single adds
        self._view = None
        if directory is None:
            _memory_layouts[layout.key] = layout
            self._array()  # exported (zeros) from model load, like the counter children were
        else:
            layout.write(directory)  # the exporter lists every bin from model load on

    def add_one(self, positions) -> None:
        """+1 at each of `positions` (a list of ints: one bin per feature of one row).

        Through a memoryview, item by item: for ~28 positions that costs less than numpy's
        fancy indexing, whose fixed overhead dominates such a small update.
        """
        if self._pid != os.getpid():
            self._array()
        view = self._view
        with _ADD_LOCK:
            for position in positions:
                view[position] += 1

    def add(self, counts_to_add: np.ndarray) -> None:
        """Add a whole counts vector (a batch's bincount)."""
        counts = self._counts if self._pid == os.getpid() else self._array()
        with _ADD_LOCK:
            counts += counts_to_add

    def _array(self) -> np.ndarray:
        pid = os.getpid()
        slot = (self.directory, self.layout.key)
        with _ADD_LOCK:  # two threads' first adds create one array, not two
            owner, counts = _arrays.get(slot, (None, None))
            if owner != pid:  # first add in this process (or a fork inherited another's map)
                if self.directory is None:
                    counts = np.zeros(len(self.layout), dtype=DTYPE)
                else:
                    counts = _map_new_file(self.directory, self.layout, pid)
                _arrays[slot] = (pid, counts)
            self._pid, self._counts, self._view = pid, counts, memoryview(counts)
        return counts


def _map_new_file(directory: str, layout: Layout, pid: int) -> np.ndarray:
    """Create this process's zeroed counts file and map it shared, read-write."""
    layout.write(directory)  # normally there already (the master wrote it at model load)
    path = counts_path(directory, layout.key, pid)
    size = len(layout) * DTYPE.itemsize
    # full size before it appears under its final name: a scrape never reads a short file
    temporary = f"{path}.tmp"
    fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)
        os.replace(temporary, path)
        mapped = mmap.mmap(fd, size)  # MAP_SHARED: writes reach the file's page cache
    finally:
        os.close(fd)  # the map keeps its own reference
    return np.frombuffer(mapped, dtype=DTYPE)  # a plain ndarray: no np.memmap overhead


def _names(directory: str, pattern: str) -> list:
    """File names in `directory` matching `pattern` (the directory's own name is no pattern)."""
    return glob.glob(pattern, root_dir=directory)


def _add_labelled(totals: dict, layout: Layout, counts: np.ndarray) -> None:
    for labels, count in zip(layout.labels, counts.tolist()):
        totals[labels] = totals.get(labels, 0) + count


def read_totals(directory: str) -> dict:
    """{(feature, bin): count} summed over every layout's live and archived counts files.

    Every bin of every layout is present (zeros included). The caller holds
    `monitoring.compaction.LOCK`, so a fold in progress is never seen half done.
    """
    totals = {}
    for name in sorted(_names(directory, f"{PREFIX}*.json")):
        layout = Layout.read(os.path.join(directory, name))
        _add_labelled(totals, layout, np.zeros(len(layout), dtype=DTYPE))
        for counts_name in _names(directory, f"{PREFIX}{layout.key}_*.counts"):
            # np.fromfile reads through the page cache: a live worker's latest increments
            counts = np.fromfile(os.path.join(directory, counts_name), dtype=DTYPE)
            _add_labelled(totals, layout, counts)
    return totals


def memory_totals() -> dict:
    """{(feature, bin): count} of this process's in-memory arrays (single-process mode)."""
    totals = {}
    for key, layout in _memory_layouts.items():
        _owner, counts = _arrays.get((None, key), (None, None))
        _add_labelled(totals, layout, counts if counts is not None
                      else np.zeros(len(layout), dtype=DTYPE))
    return totals


def fold_dead_worker(pid: int, directory: str) -> list:
    """Add dead process `pid`'s counts into each layout's archive and delete its files.

    The caller holds `monitoring.compaction.LOCK` (the exporter reads under it). Returns the
    files removed.
    """
    removed = []
    suffix = f"_{pid}.counts"
    for name in _names(directory, f"{PREFIX}*{suffix}"):
        path = os.path.join(directory, name)
        key = name[len(PREFIX):-len(suffix)]
        archive = counts_path(directory, key, ARCHIVE)
        total = np.fromfile(path, dtype=DTYPE)
        if os.path.exists(archive):
            total += np.fromfile(archive, dtype=DTYPE)
        temporary = f"{archive}.tmp"
        total.tofile(temporary)
        os.replace(temporary, archive)  # the archive is whole at every instant
        os.remove(path)
        removed.append(path)
    return removed


def wipe(directory: str) -> list:
    """Delete the drift files a previous run left in `directory` (ours only); return them."""
    removed = []
    for pattern in FILE_PATTERNS:
        for name in _names(directory, pattern):
            path = os.path.join(directory, name)
            os.remove(path)
            removed.append(path)
    return removed
