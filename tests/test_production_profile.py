"""The production compose profile: API keys required (as a secret file), Grafana login on."""
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
FILES = ["-f", str(ROOT / "docker-compose.yml"), "-f", str(ROOT / "docker-compose.prod.yml")]

pytestmark = pytest.mark.skipif(shutil.which("docker-compose") is None,
                                reason="docker-compose not installed (make system-deps)")


def compose(tmp_path, env_text, files=FILES):
    env_file = tmp_path / "compose.env"
    env_file.write_text(env_text)
    return subprocess.run(["docker-compose", "--project-directory", str(ROOT), *files,
                           "--env-file", str(env_file), "--profile", "load", "config"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})


def key_file(tmp_path):
    """A file of one API key, made for the test (no key is committed)."""
    keys = tmp_path / "api-keys"
    keys.write_text(secrets.token_hex(32) + "\n")
    return keys


@pytest.mark.parametrize("env_text", ["", "API_KEYS_FILE_HOST=\n"])
def test_production_profile_requires_a_key_file(tmp_path, env_text):
    done = compose(tmp_path, env_text)
    assert done.returncode != 0
    assert "set API_KEYS_FILE_HOST to a file of API keys" in done.stderr


def test_production_profile_mounts_the_keys_as_a_secret(tmp_path):
    keys = key_file(tmp_path)
    done = compose(tmp_path, f"API_KEYS_FILE_HOST={keys}\n")
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    api = config["services"]["api"]
    assert api["environment"]["API_KEYS_FILE"] == "/run/secrets/api_keys"
    assert "API_KEYS" not in api["environment"], "keys never in the environment"
    assert [s["source"] if isinstance(s, dict) else s for s in api["secrets"]] == ["api_keys"]
    assert config["secrets"]["api_keys"]["file"] == str(keys)
    assert api["read_only"] is True          # from the demo stack, kept in production
    assert config["services"]["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_production_load_sends_the_key_from_the_same_secret(tmp_path):
    env = f"API_KEYS_FILE_HOST={key_file(tmp_path)}\n"
    prod = yaml.safe_load(compose(tmp_path, env).stdout)["services"]["load"]
    demo = yaml.safe_load(compose(tmp_path, env, FILES[:2]).stdout)["services"]["load"]
    assert [s["source"] if isinstance(s, dict) else s for s in prod["secrets"]] == ["api_keys"]
    assert prod["command"] == demo["command"] + ["--api-key-file=/run/secrets/api_keys"]
    assert not any("LOAD_API_KEY" in str(v) for v in prod.get("environment", {}).values())


@pytest.mark.parametrize("settings, code, anonymous", [
    ("", 0, "false"),                                           # sign-in by default
    ("BIND_ADDR=0.0.0.0\n", 0, "false"),
    ("BIND_ADDR=0.0.0.0\nGF_AUTH_ANONYMOUS_ENABLED=true\n", 1, None),   # refused
    ("GF_AUTH_ANONYMOUS_ENABLED=true\n", 0, "true"),          # asked for, loopback only
])
def test_production_grafana_requires_sign_in_beyond_loopback(tmp_path, grafana_entrypoint,
                                                             settings, code, anonymous):
    """The environment the production profile resolves, run through Grafana's entry point."""
    done = compose(tmp_path, f"API_KEYS_FILE_HOST={key_file(tmp_path)}\n{settings}")
    assert done.returncode == 0, done.stderr
    grafana = yaml.safe_load(done.stdout)["services"]["grafana"]
    assert grafana["entrypoint"][1] == "/usr/local/bin/grafana-entrypoint.sh"  # the demo's
    start = grafana_entrypoint(grafana["environment"])
    assert start.code == code, start.output
    assert (start.env or {}).get("GF_AUTH_ANONYMOUS_ENABLED") == anonymous
    if code:
        assert "would show the dashboards to anyone who can reach this host" in start.output
        assert list(grafana_entrypoint.data.iterdir()) == []
    else:
        assert (grafana_entrypoint.data / "admin-password").stat().st_mode & 0o077 == 0
