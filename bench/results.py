"""Where a benchmark run's JSON goes: bench/results/<date>-<commit>[-<name>].json.

The date is the UTC day the run started, the commit the checkout's short hash, with
``-dirty`` when the tree had uncommitted changes (the figures are then not those of the
commit alone). A second run on the same day at the same commit gets ``-2``, ``-3``, ...:
a measurement is never overwritten. The history of the figures lives in these files and in
commit messages; a file is committed when the docs quote it (bench/results/README.md).
"""
import json
import os
import platform
import subprocess
import sys
from datetime import datetime
from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent / "results"


def checkout_commit(repo: Path) -> str:
    """Short hash of HEAD, + "-dirty" for uncommitted changes; "unknown" outside git."""
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                              text=True, timeout=30)
    try:
        head = git("rev-parse", "--short=7", "HEAD")
        if head.returncode != 0:
            return "unknown"
        changes = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if changes.stdout.strip() else "")


def result_path(started: datetime, commit: str, name: str = "",
                directory: Path | None = None) -> Path:
    """The first free bench/results/<date>-<commit>[-<name>][-N].json for this run."""
    directory = DIRECTORY if directory is None else directory
    stem = f"{started.strftime('%Y-%m-%d')}-{commit}" + (f"-{name}" if name else "")
    path, number = directory / f"{stem}.json", 1
    while path.exists():
        number += 1
        path = directory / f"{stem}-{number}.json"
    return path


def machine() -> dict:
    """Where the figures come from: CPU model, core count, kernel, Python."""
    model_name = next((line.split(":", 1)[1].strip() for line in
                       Path("/proc/cpuinfo").read_text().splitlines()
                       if line.startswith("model name")), platform.processor())
    return {"cpu": model_name, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version()}


def header(started: datetime, commit: str, options) -> dict:
    """The fields every run's JSON starts with: date, commit, machine, command, options."""
    return {"date": started.isoformat(timespec="seconds"), "commit": commit,
            "machine": machine(), "command": " ".join(sys.argv),
            "options": {k: str(v) if isinstance(v, Path) else v
                        for k, v in vars(options).items()}}


def save_run(started: datetime, commit: str, options, figures: dict, name: str = "") -> Path:
    """Write a run's JSON, the header then `figures`, to `options.json` or the run's
    bench/results/ path; returns the path."""
    return write({**header(started, commit, options), **figures},
                 options.json or result_path(started, commit, name))


def write(document: dict, path: Path) -> Path:
    """Write the run's JSON (directories created as needed); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path
