"""pip-audit in CI: no known vulnerability in the pinned or installed dependencies.

Talks to PyPI (https://pypi.org/pypi/...), the one test that leaves 127.0.0.1: marked
`audit`, skipped with the reason when PyPI is unreachable. Accepted exceptions live in
.pip-audit-ignore, each with its reason.
"""
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "audit_deps.py"
sys.path.insert(0, str(SCRIPT.parent))
import audit_deps  # noqa: E402


def test_every_accepted_exception_has_a_reason(tmp_path):
    audit_deps.read_ignores()                       # the committed file parses
    bad = tmp_path / "ignore"
    bad.write_text("PYSEC-2099-1\n")
    with pytest.raises(ValueError, match="no reason"):
        audit_deps.read_ignores(bad)
    bad.write_text("# header\nGHSA-xxxx-yyyy-zzzz  # fixed upstream, unused code path\n")
    assert audit_deps.read_ignores(bad) == {
        "GHSA-xxxx-yyyy-zzzz": "fixed upstream, unused code path"}


def test_pins_are_exact():
    pins = audit_deps.pinned_requirements()
    assert pins and all("==" in pin for pin in pins), pins


@pytest.mark.audit
def test_no_known_vulnerabilities_in_dependencies():
    if not audit_deps.pypi_reachable():
        pytest.skip("PyPI's JSON API is unreachable (offline): dependencies not audited")
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          timeout=900, cwd=ROOT)
    figures = json.loads(done.stdout)
    print(f"\naudited {figures['packages']} packages ({figures['pins']} pins): "
          f"{figures['audited_by_pip_audit']} by pip-audit, {figures['audited_by_project_json']} "
          f"by PyPI's project JSON; unaudited {figures['unaudited']}; vulnerable "
          f"{figures['vulnerable']}; accepted {figures['ignored']}")
    assert figures["vulnerable"] == {}, "upgrade the pin or document it in .pip-audit-ignore"
    assert done.returncode == 0, done.stderr[-2000:]
    if figures["unaudited_pins"]:
        warnings.warn(f"pins not auditable against this PyPI (older than the latest release, "
                      f"no per-version JSON): {figures['unaudited_pins']}")
