"""Audit the pinned and installed dependencies for known vulnerabilities (pip-audit + PyPI).

    python scripts/audit_deps.py   # exit 0 clean, 1 vulnerable or unaccepted unaudited, 77 offline

1. `pip-audit --no-deps --disable-pip` over the exact pins of setup.cfg (install_requires and
   the test extra) plus every package installed in this environment (transitive ones too),
   against PyPI's vulnerability data, ignoring the IDs listed in `.pip-audit-ignore`.
2. A package pip-audit reports as "not found" (mirrors that serve only the project-level
   JSON, not /pypi/NAME/VERSION/json) is checked through https://pypi.org/pypi/NAME/json:
   when the installed version is the latest release, that document's `vulnerabilities` are
   exactly the ones of our version. Otherwise it is "unaudited": it fails the audit unless
   `.pip-audit-ignore` accepts that exact version with a reason
   (`unaudited NAME==VERSION  # reason`), so "not checked" is a written decision, never a
   warning nobody reads.
Offline (PyPI unreachable) the exit status is 77 so a local run can skip with the reason;
under CI (CI=true) it is 1: an audit that silently did not run is not a pass.
"""
from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
IGNORE_FILE = ROOT / ".pip-audit-ignore"
PYPI = "https://pypi.org/pypi/{name}/json"
OFFLINE = 77


def read_ignores(path: Path = IGNORE_FILE) -> tuple[dict, dict]:
    """Accepted exceptions, each line with a reason after '#' (a line without one is an error):
    `ID  # reason` (a known vulnerability) and `unaudited NAME==VERSION  # reason` (a package
    this PyPI cannot audit). Returns ({vulnerability id: reason}, {"name==version": reason})."""
    ignores, unaudited = {}, {}
    if not path.is_file():
        return ignores, unaudited
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        entry, _, reason = line.partition("#")
        entry = entry.strip()
        if not reason.strip():
            raise ValueError(f"{path.name}:{number}: {entry} has no reason after '#'")
        kind, _, package = entry.partition(" ")
        if kind == "unaudited":
            name, sep, version = package.strip().partition("==")
            if not sep or not name or not version:
                raise ValueError(f"{path.name}:{number}: write 'unaudited NAME==VERSION  # why'")
            unaudited[f"{normalise(name)}=={version}"] = reason.strip()
        else:
            ignores[entry] = reason.strip()
    return ignores, unaudited


def in_ci(env=os.environ) -> bool:
    """CI=true (GitHub Actions, GitLab, most CI systems set it)."""
    return env.get("CI", "").lower() in ("true", "1", "yes")


def pinned_requirements() -> list:
    """`name==version` lines of setup.cfg's install_requires and test extra."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config["options"]["install_requires"].splitlines()
    lines += config["options.extras_require"]["test"].splitlines()
    return [re.sub(r"\[.*?\]", "", line.strip()) for line in lines if line.strip()]


def installed_requirements() -> list:
    """Every installed distribution as `name==version` (this project itself excluded)."""
    out = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "==" in line and not line.startswith("-e")]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def run_pip_audit(requirements: list, ignores: dict) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(requirements) + "\n")
    argv = [sys.executable, "-m", "pip_audit", "-r", handle.name, "--no-deps", "--disable-pip",
            "--progress-spinner", "off", "-f", "json", "-s", "pypi"]
    for vuln in ignores:
        argv += ["--ignore-vuln", vuln]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    Path(handle.name).unlink()
    if not done.stdout.strip():
        raise RuntimeError(f"pip-audit produced no report: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def project_vulnerabilities(name: str, version: str) -> list | None:
    """PyPI's vulnerabilities for `version` when it is the latest release, else None."""
    response = requests.get(PYPI.format(name=name), timeout=30)
    if response.status_code != 200:
        return None
    document = response.json()
    if document["info"]["version"] != version:
        return None
    return document.get("vulnerabilities") or []


def audit() -> dict:
    """Run both steps; return the figures (see module docstring)."""
    ignores, accepted_unaudited = read_ignores()
    pins = {normalise(r.split("==")[0]): r.split("==")[1] for r in pinned_requirements()}
    installed = {normalise(r.split("==")[0]): r.split("==")[1] for r in installed_requirements()}
    packages = {**installed, **pins}
    report = run_pip_audit([f"{n}=={v}" for n, v in sorted(packages.items())], ignores)
    vulnerable, skipped = {}, []
    for dep in report["dependencies"]:
        if dep.get("skip_reason"):
            skipped.append(normalise(dep["name"]))
        elif dep.get("vulns"):
            vulnerable[dep["name"]] = [v["id"] for v in dep["vulns"]]
    with ThreadPoolExecutor(8) as pool:
        fallback = dict(zip(skipped, pool.map(
            lambda n: project_vulnerabilities(n, packages[n]), skipped)))
    unaudited = sorted(n for n, vulns in fallback.items() if vulns is None)
    unaccepted = [n for n in unaudited if f"{n}=={packages[n]}" not in accepted_unaudited]
    for name, vulns in fallback.items():
        ids = [v["id"] for v in vulns or []
               if v["id"] not in ignores and not set(v.get("aliases") or ()) & set(ignores)]
        if ids:
            vulnerable[name] = ids
    return {"packages": len(packages), "pins": len(pins),
            "audited_by_pip_audit": len(report["dependencies"]) - len(skipped),
            "audited_by_project_json": len(skipped) - len(unaudited),
            "unaudited": [f"{n}=={packages[n]}" for n in unaudited],
            "unaudited_pins": [n for n in unaudited if n in pins],
            "unaudited_not_accepted": [f"{n}=={packages[n]}" for n in unaccepted],
            "vulnerable": vulnerable, "ignored": ignores}


def failed(figures: dict) -> bool:
    """A known vulnerability, or a package nobody could audit and nobody accepted."""
    return bool(figures["vulnerable"] or figures["unaudited_not_accepted"])


def pypi_reachable() -> bool:
    try:
        return requests.get(PYPI.format(name="pip"), timeout=10).status_code == 200
    except requests.RequestException:
        return False


def main() -> int:
    if not pypi_reachable():
        if in_ci():
            print("audit FAILED: PyPI's JSON API (https://pypi.org/pypi/...) is unreachable "
                  "and CI is set: the dependencies were not audited", file=sys.stderr)
            return 1
        print("audit skipped: PyPI's JSON API (https://pypi.org/pypi/...) is unreachable")
        return OFFLINE
    figures = audit()
    print(json.dumps(figures, indent=2))
    return 1 if failed(figures) else 0


if __name__ == "__main__":
    sys.exit(main())
