"""constraints.txt (`make lock`): every dependency pinned, the direct pins as in setup.cfg,
and used by both the Makefile's venv and the Dockerfile's runtime install."""
import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from scripts import lock_deps

ROOT = Path(__file__).resolve().parent.parent


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line.strip())
            assert match, f"not NAME==VERSION: {line!r}"
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def is_installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_every_setup_cfg_pin_has_the_same_version_in_the_constraints():
    pins = constraints()
    for req in lock_deps.direct_requirements():
        (spec,) = req.specifier
        assert spec.operator == "==", f"{req} is not pinned in setup.cfg"
        name = canonicalize_name(req.name)
        assert pins.get(name) == spec.version, \
            f"{req}: constraints.txt has {pins.get(name)}; run make lock"


def test_every_installed_dependency_of_the_project_is_constrained():
    """The project's whole dependency closure (as installed here) has a line: nothing floats.

    `make test` installs the test and report extras; the bench extra is walked when it is
    installed.
    """
    roots = [req for req in lock_deps.direct_requirements() if is_installed(req.name)]
    missing = {name for name in lock_deps.closure(roots)
               if canonicalize_name(name) not in constraints()}
    assert not missing, f"not in constraints.txt (run make lock): {sorted(missing)}"


def test_lock_skips_extras_not_requested():
    """A dependency behind an extra nobody asked for is not pulled into the lock."""
    requests_deps = lock_deps.closure([Requirement("requests")])
    assert "PySocks" not in requests_deps          # requests[socks] only
    assert requests_deps["requests"] == metadata.version("requests")


def test_makefile_and_dockerfile_install_with_the_constraints():
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -c constraints.txt -e '.[test,report]'" in makefile
    assert re.search(r"^lock:.*(\n\t.*)*\n\t.*scripts/lock_deps.py", makefile, re.M)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^COPY .*constraints\.txt", dockerfile, re.M)
    assert "pip install -c constraints.txt -r /tmp/requirements.txt" in dockerfile
