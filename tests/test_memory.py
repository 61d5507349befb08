"""The master gives back the library pages only its start-up touched (accident_api.memory)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from accident_api.memory import file_backed_mappings

ROOT = Path(__file__).resolve().parent.parent

MAPS = """\
55d0c8a00000-55d0c8a01000 r--p 00000000 fd:01 1234   /usr/bin/python3.11
7f1e2c000000-7f1e2c021000 rw-p 00000000 00:00 0
7f1e2d000000-7f1e2e000000 r-xp 00001000 fd:01 99     /venv/lib/onnxruntime_pybind11_state.so
7f1e2f000000-7f1e2f100000 rw-p 00000000 00:00 0      [heap]
7f1e30000000-7f1e30001000 rw-s 00000000 00:1a 7      /tmp/metrics/counter_12.db (deleted)
"""


def test_only_file_backed_mappings_are_listed(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text(MAPS)
    assert file_backed_mappings(str(maps)) == [
        (0x55d0c8a00000, 0x55d0c8a01000, "/usr/bin/python3.11"),
        (0x7f1e2d000000, 0x7f1e2e000000, "/venv/lib/onnxruntime_pybind11_state.so"),
        (0x7f1e30000000, 0x7f1e30001000, "/tmp/metrics/counter_12.db (deleted)"),
    ]
    assert file_backed_mappings(str(tmp_path / "absent")) == []


PROBE = """
import mmap, sys
from accident_api.memory import release_file_pages

def mapped_kib(path):
    lines = open("/proc/self/smaps").read().splitlines()
    at = next(i for i, line in enumerate(lines) if line.endswith(path))
    return next(int(line.split()[1]) for line in lines[at + 1:] if line.startswith("Rss:"))

path = sys.argv[1]
with open(path, "rb") as handle:
    pages = mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ)
touched = sum(pages[offset] for offset in range(0, len(pages), mmap.PAGESIZE))
before = mapped_kib(path)
advised = release_file_pages()
print(before, mapped_kib(path), advised)
"""


def filesystem_of(path) -> str:
    """The type of the filesystem holding `path` (longest mount point prefix)."""
    mounts = [line.split()[1:3] for line in open("/proc/mounts")]
    return max((m for m in mounts if str(path).startswith(m[0])), key=lambda m: len(m[0]))[1]


def test_a_process_gives_back_the_file_pages_it_alone_maps(tmp_path):
    if filesystem_of(tmp_path) in ("tmpfs", "ramfs"):
        pytest.skip("pages of a file in memory (tmpfs) are not reclaimable without swap")
    data = tmp_path / "library.so"
    data.write_bytes(os.urandom(8 * 1024 * 1024))
    done = subprocess.run([sys.executable, "-c", PROBE, str(data)], capture_output=True,
                          text=True, cwd=ROOT, timeout=60, check=True)
    before, after, advised = map(int, done.stdout.split())
    if advised == 0:
        pytest.skip("MADV_PAGEOUT is not available here (Linux before 5.4)")
    assert before >= 8 * 1024 - 4, "every page was touched"
    assert after < before / 4, f"{before} kB mapped before the release, {after} kB after"
    assert advised >= 8 * 1024 * 1024

