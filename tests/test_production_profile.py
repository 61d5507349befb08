"""The production compose profile: API keys required (as a secret file), Grafana login on."""
import os
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


def test_production_profile_requires_a_key_file(tmp_path):
    done = compose(tmp_path, "GF_SECURITY_ADMIN_PASSWORD=long-random\n")
    assert done.returncode != 0 and "API_KEYS_FILE_HOST" in done.stderr


def test_production_profile_mounts_the_keys_as_a_secret(tmp_path):
    keys = tmp_path / "api-keys"
    keys.write_text("0123456789abcdef0123456789abcdef\n")
    done = compose(tmp_path, f"GF_SECURITY_ADMIN_PASSWORD=long-random\nAPI_KEYS_FILE_HOST={keys}\n")
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
    keys = tmp_path / "api-keys"
    keys.write_text("0123456789abcdef0123456789abcdef\n")
    env = f"GF_SECURITY_ADMIN_PASSWORD=long-random\nAPI_KEYS_FILE_HOST={keys}\n"
    prod = yaml.safe_load(compose(tmp_path, env).stdout)["services"]["load"]
    demo = yaml.safe_load(compose(tmp_path, env, FILES[:2]).stdout)["services"]["load"]
    assert [s["source"] if isinstance(s, dict) else s for s in prod["secrets"]] == ["api_keys"]
    assert prod["command"] == demo["command"] + ["--api-key-file=/run/secrets/api_keys"]
    assert not any("LOAD_API_KEY" in str(v) for v in prod.get("environment", {}).values())
