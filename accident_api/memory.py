"""Give back the file pages gunicorn's master touched only while starting up.

Loading the model in the master (preload_app) runs code the workers never run: importing and
initialising onnxruntime, building its session, hashing the artifacts (libcrypto). Those
pages of shared libraries stay mapped in the master alone, ~26 MB of its ~64 MB PSS with the
default model, while the workers only need the inference path. `release_file_pages` asks the
kernel to reclaim the master's file-backed pages (MADV_PAGEOUT, Linux 5.4+): they are clean
copies of files, so nothing is lost, and whatever a process uses afterwards (the workers, the
master's own loop and metrics exporter) is simply read back from the page cache on first use.
Anonymous memory, the model and the Python heap the workers share copy-on-write, is never
touched.
"""
import ctypes
import ctypes.util

MADV_PAGEOUT = 21  # linux/mman.h


def _madvise():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        madvise = libc.madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    madvise.restype = ctypes.c_int
    return madvise


def file_backed_mappings(maps_path: str = "/proc/self/maps"):
    """(start, end, path) of every mapping of this process backed by a file."""
    try:
        with open(maps_path) as maps:
            lines = maps.readlines()
    except OSError:  # not Linux
        return []
    mappings = []
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/"):
            start, end = (int(address, 16) for address in fields[0].split("-"))
            mappings.append((start, end, fields[5].rstrip("\n")))
    return mappings


def release_file_pages() -> int:
    """Advise the kernel to reclaim this process's file-backed pages; return the bytes advised.

    0 where the call is unavailable (not Linux, a kernel before 5.4): nothing else changes.
    """
    madvise = _madvise()
    if madvise is None:
        return 0
    advised = 0
    for start, end, _path in file_backed_mappings():
        if madvise(start, end - start, MADV_PAGEOUT) == 0:
            advised += end - start
    return advised
