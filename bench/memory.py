"""Server memory (and CPU time) of a whole process tree, from /proc.

Memory comes from /proc/<pid>/smaps_rollup.

PSS (proportional set size) charges each shared page to its sharers in equal parts, so the
PSS of master + workers summed is what the server really costs; its anonymous part (heap, the
model, Python objects: Pss_Anon) is what no page-cache reclaim can give back. USS (private
pages) is what killing one process would free. A single worker's RSS (every page it maps,
shared or not) is what one worker would cost on its own.
"""
import os
from dataclasses import asdict, dataclass


@dataclass
class ProcessMemory:
    """Memory of one process, in kB, as the kernel reports it."""

    pid: int
    rss: int
    pss: int
    anon_pss: int
    uss: int


def children_of(pid):
    """All descendants of `pid` (workers, their helpers), read from /proc/*/stat."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    # The command name may hold spaces; the ppid is the 2nd field after ')'.
                    parents[int(entry)] = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, ppid in parents.items() if ppid == parent]
        found.extend(kids)
        frontier.extend(kids)
    return found


def process_memory(pid):
    """One process's RSS, PSS (all and anonymous) and USS in kB from smaps_rollup (None if it
    is gone)."""
    fields = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    fields[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        return None
    uss = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return ProcessMemory(pid, fields.get("Rss", 0), fields.get("Pss", 0),
                         fields.get("Pss_Anon", 0), uss)


def tree_memory(root_pid):
    """Memory of a server's whole tree: totals, the largest child, and per-process detail.

    Returns a dict of MB figures: `pss_mb`, `anon_pss_mb`, `uss_mb` (sums over master +
    descendants), `worker_rss_mb` (RSS of the largest child = what one worker costs alone),
    and `processes`.
    """
    master = process_memory(root_pid)
    children = [m for m in map(process_memory, children_of(root_pid)) if m is not None]
    everyone = ([master] if master else []) + children
    worker_rss = max((m.rss for m in children), default=master.rss if master else 0)
    pss = sum(m.pss for m in everyone)
    return {
        "pss_mb": pss / 1024,
        "anon_pss_mb": sum(m.anon_pss for m in everyone) / 1024,
        "uss_mb": sum(m.uss for m in everyone) / 1024,
        "worker_rss_mb": worker_rss / 1024,
        "processes": [asdict(m) for m in everyone],
    }


def tree_cpu_seconds(root_pid):
    """User + system CPU seconds used so far by `root_pid` and its live descendants.

    Sampled before and after a pass, the difference over the requests served is the server's
    CPU cost per request, which other load on the machine does not inflate the way it
    inflates latency (workers replaced meanwhile would be missed; none are in a short pass).
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in [root_pid] + children_of(root_pid):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / ticks
