"""scripts/install-system-deps.sh on a "fresh Debian machine": fake commands on PATH record
what it would install; nothing is installed and nothing leaves the machine."""
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "install-system-deps.sh"
TOOLS = ("bash", "sort", "tr", "cat", "chmod", "rm", "tee", "printf", "test")


def fake_bin(tmp_path: Path, python_body: str, present=()) -> Path:
    """A PATH with the real basic tools, a fake python3 and apt-get, and `present` commands."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        real = shutil.which(tool)
        if real:
            (bin_dir / tool).symlink_to(real)
    scripts = {
        "python3": python_body,
        "id": "#!/bin/sh\necho 0\n",           # as root: no sudo in the way
        # records its arguments, and whether the service policy was in place at install time
        "apt-get": f'#!/bin/bash\necho "$@" >> {tmp_path}/apt.log\n'
                   f'if [ "$1" = install ]; then cat "$POLICY_RC_D" > {tmp_path}/policy-at-install'
                   f' 2>/dev/null; fi\n',
    }
    scripts.update({name: "#!/bin/sh\nexit 0\n" for name in present})
    for name, body in scripts.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def run_script(tmp_path, bin_dir, **env):
    # SBIN_DIR: an empty stand-in for /usr/sbin, so this machine's own nginx is not seen
    (tmp_path / "sbin").mkdir(exist_ok=True)
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          env={"PATH": str(bin_dir), "POLICY_RC_D": str(tmp_path / "policy-rc.d"),
                               "SBIN_DIR": str(tmp_path / "sbin"), **env})


DEBIAN_PYTHON_WITHOUT_ENSUREPIP = ('#!/bin/sh\ncase "$2" in\n  "import ensurepip") exit 1;;\n'
                                   '  *) echo /usr;;\nesac\n')


def test_fresh_debian_gets_venv_iproute2_procps_and_services_stay_stopped(tmp_path):
    bin_dir = fake_bin(tmp_path, DEBIAN_PYTHON_WITHOUT_ENSUREPIP,
                       present=("docker-compose", "wrk"))
    done = run_script(tmp_path, bin_dir)
    assert done.returncode == 0, done.stderr
    install = [line for line in (tmp_path / "apt.log").read_text().splitlines()
               if line.startswith("install")]
    assert len(install) == 1
    assert set(install[0].split()) >= {"python3-venv", "iproute2", "procps", "prometheus",
                                       "nginx", "chromium"}
    # the service policy forbade starting prometheus and nginx during the install, and is
    # gone after
    assert "exit 101" in (tmp_path / "policy-at-install").read_text()
    assert not (tmp_path / "policy-rc.d").exists()


def test_an_existing_policy_is_left_alone(tmp_path):
    bin_dir = fake_bin(tmp_path, DEBIAN_PYTHON_WITHOUT_ENSUREPIP,
                       present=("docker-compose", "wrk", "ss", "ps", "chromium"))
    (tmp_path / "policy-rc.d").write_text("#!/bin/sh\nexit 0\n")
    assert run_script(tmp_path, bin_dir).returncode == 0
    assert (tmp_path / "policy-rc.d").read_text() == "#!/bin/sh\nexit 0\n"


def test_python_with_ensurepip_needs_no_venv_package(tmp_path):
    bin_dir = fake_bin(tmp_path, "#!/bin/sh\nexit 0\n",
                       present=("docker-compose", "wrk", "prometheus", "promtool", "ps", "nginx",
                                "chromium"))
    assert run_script(tmp_path, bin_dir).returncode == 0
    assert "install" in (tmp_path / "apt.log").read_text()
    assert "python3-venv" not in (tmp_path / "apt.log").read_text()
    assert "iproute2" in (tmp_path / "apt.log").read_text()


def test_a_non_debian_python_without_ensurepip_is_a_clear_error(tmp_path):
    bin_dir = fake_bin(tmp_path, '#!/bin/sh\ncase "$2" in\n  "import ensurepip") exit 1;;\n'
                                 '  *) echo /root/.pyenv/versions/3.11.9;;\nesac\n')
    done = run_script(tmp_path, bin_dir)
    assert done.returncode == 1
    assert "has no ensurepip" in done.stderr and not (tmp_path / "apt.log").exists()


def test_nginx_outside_path_in_sbin_is_not_installed_again(tmp_path):
    """A non-root PATH often lacks /usr/sbin, where Debian puts nginx: found there, it is kept."""
    bin_dir = fake_bin(tmp_path, "#!/bin/sh\nexit 0\n",
                       present=("docker-compose", "wrk", "prometheus", "promtool", "ps", "ss",
                                "busybox", "chromium"))
    (tmp_path / "sbin").mkdir()
    (tmp_path / "sbin" / "nginx").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "sbin" / "nginx").chmod(0o755)
    done = run_script(tmp_path, bin_dir)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "apt.log").exists(), "nothing was missing: apt-get must not run"


def test_chromium_is_installed_only_when_missing(tmp_path):
    """The HTML reports' tests open them in Debian's headless chromium."""
    everything_else = ("docker-compose", "wrk", "prometheus", "promtool", "ps", "ss", "busybox")
    bin_dir = fake_bin(tmp_path, "#!/bin/sh\nexit 0\n", present=everything_else)
    (tmp_path / "sbin").mkdir()
    (tmp_path / "sbin" / "nginx").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "sbin" / "nginx").chmod(0o755)
    assert run_script(tmp_path, bin_dir).returncode == 0
    assert "install -y -qq --no-install-recommends chromium" in \
        (tmp_path / "apt.log").read_text()
    (tmp_path / "apt.log").unlink()
    (bin_dir / "chromium").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "chromium").chmod(0o755)
    assert run_script(tmp_path, bin_dir).returncode == 0
    assert not (tmp_path / "apt.log").exists()
