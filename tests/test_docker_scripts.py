"""The container scripts: entrypoint (wipe multiprocess dir, exec as PID 1) and trainer."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_entrypoint_wipes_multiproc_dir_and_execs(tmp_path):
    multiproc = tmp_path / "multiproc"
    (multiproc / "old").mkdir(parents=True)
    (multiproc / "counter_123.db").write_bytes(b"stale")
    (multiproc / "old" / "gauge_livesum_9.db").write_bytes(b"stale")
    inode = multiproc.stat().st_ino
    process = subprocess.Popen(
        [str(ROOT / "docker" / "entrypoint.sh"), "sh", "-c",
         'echo "$$"; ls -A "$PROMETHEUS_MULTIPROC_DIR"'],
        stdout=subprocess.PIPE, text=True,
        env={"PATH": os.environ["PATH"], "PROMETHEUS_MULTIPROC_DIR": str(multiproc)})
    out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    pid, *listing = out.splitlines()
    assert int(pid) == process.pid, "the command must replace the script (exec), as PID 1"
    assert listing == []
    assert multiproc.stat().st_ino == inode, "the directory itself (maybe a tmpfs) is kept"


def test_entrypoint_creates_default_dir(tmp_path):
    done = subprocess.run([str(ROOT / "docker" / "entrypoint.sh"), "sh", "-c",
                           'test -d "$PROMETHEUS_MULTIPROC_DIR" && echo "$PROMETHEUS_MULTIPROC_DIR"'],
                          capture_output=True, text=True, timeout=10,
                          env={"PATH": os.environ["PATH"],
                               "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "new" / "dir")})
    assert done.returncode == 0 and done.stdout.strip() == str(tmp_path / "new" / "dir")


@pytest.fixture
def trainer(tmp_path):
    """Run docker/train.sh with a stub `accident-api` that logs its arguments."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    stub = bin_dir / "accident-api"
    stub.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    stub.chmod(0o755)
    models = tmp_path / "models"
    models.mkdir()

    def run(**env):
        done = subprocess.run(
            [str(ROOT / "docker" / "train.sh")], capture_output=True, text=True, timeout=10,
            env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "MODEL_PATH": str(models),
                 "DATA_DIR": str(tmp_path / "data"), **env})
        calls = log.read_text().splitlines() if log.exists() else []
        return done, calls
    run.models = models
    return run


def test_trainer_synthetic_by_default(trainer):
    done, calls = trainer()
    assert done.returncode == 0, done.stderr
    assert calls == [f"train --synthetic --out {trainer.models}"]


def test_trainer_real_baac_year(trainer, tmp_path):
    done, calls = trainer(TRAIN_SOURCE="baac:2021")
    assert done.returncode == 0, done.stderr
    raw = tmp_path / "data" / "raw"
    assert calls == [f"data download --year 2021 --dest {raw}",
                     f"train --raw-dir {raw} --year 2021 --out {trainer.models}"]


def test_trainer_keeps_an_existing_model_unless_forced(trainer):
    (trainer.models / "model_card.json").write_text("{}")
    done, calls = trainer()
    assert done.returncode == 0 and calls == []
    assert "already" in done.stdout
    done, calls = trainer(FORCE_TRAIN="1")
    assert calls == [f"train --synthetic --out {trainer.models}"]


@pytest.mark.parametrize("source", ["baac", "baac:21", "csv:2021"])
def test_trainer_rejects_unknown_source(trainer, source):
    done, calls = trainer(TRAIN_SOURCE=source)
    assert done.returncode == 2 and calls == []
    assert "TRAIN_SOURCE must be 'synthetic' or 'baac:YEAR'" in done.stderr
