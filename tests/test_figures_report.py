"""The `figures` fixture: recorded lines reach the terminal even when the test passes."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # runs a pytest session of its own
def test_figures_of_a_passing_test_are_printed_in_their_own_section(tmp_path):
    (tmp_path / "test_sample.py").write_text(
        "def test_reports(figures):\n"
        "    figures('sent 10, answered 10, lost 0')\n"
        "    print('a bare print that pytest swallows')\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "tests.fixtures.reliability", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
    section = done.stdout.split("reliability figures", 1)[1]
    assert "test_sample.py::test_reports\n    sent 10, answered 10, lost 0" in section
    assert "bare print" not in done.stdout
