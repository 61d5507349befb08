"""docker-compose.yml, Dockerfile and .env.example: valid, consistent with the Prometheus
and Grafana configuration in the repository, and following the stack's security rules."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
# A variable whose value would be a credential: none may have one in a committed file.
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|_KEY", re.I)

needs_compose = pytest.mark.skipif(shutil.which("docker-compose") is None,
                                   reason="docker-compose not installed (make system-deps)")


def compose(tmp_path, *args, env_text=""):
    """Run docker-compose on the repo's file with only the given env file (none by default,
    as on a fresh clone) and no host environment."""
    env_file = tmp_path / "compose.env"
    env_file.write_text(env_text)
    return subprocess.run(
        ["docker-compose", "--project-directory", str(ROOT), "-f", str(COMPOSE),
         "--env-file", str(env_file), *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    """The compose file as docker-compose resolves it, every profile included."""
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose not installed (make system-deps)")
    done = compose(tmp_path_factory.mktemp("compose"), "--profile", "load", "--profile",
                   "report", "config")
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def _ports(service: dict) -> list[dict]:
    """Published ports as {host_ip, published, target}: docker-compose 1.29 prints a port
    with a host address in the short "IP:PUBLISHED:TARGET/tcp" form, others as mappings."""
    ports = []
    for port in service.get("ports", []):
        if isinstance(port, str):
            host_ip, published, target = port.split("/")[0].rsplit(":", 2)
            port = {"host_ip": host_ip, "published": int(published), "target": int(target)}
        ports.append(port)
    return ports


def _volumes(service: dict) -> list[tuple[str, str, str]]:
    entries = []
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        entries.append((source, target, mode[0] if mode else "rw"))
    return entries


@needs_compose
def test_compose_config_validates_with_no_env_file(tmp_path):
    done = compose(tmp_path, "config", "-q")
    assert done.returncode == 0, done.stderr
    assert "is not set" not in done.stderr, "no variable may be missing on a fresh clone"


@needs_compose
def test_env_example_copied_as_is_changes_nothing(config, tmp_path):
    """`cp .env.example .env` gives the stack it runs without one: every default agrees."""
    done = compose(tmp_path, "--profile", "load", "--profile", "report", "config",
                   env_text=(ROOT / ".env.example").read_text())
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout) == config


def test_services_and_their_comments():
    text = COMPOSE.read_text().splitlines()
    names = list(yaml.safe_load(COMPOSE.read_text())["services"])
    assert names == ["trainer", "api", "nginx", "prometheus", "grafana", "load", "report"]
    for name in names:
        line = text.index(f"  {name}:")
        assert text[line - 1].strip().startswith("# "), f"no one-line comment above {name}"


def test_every_bind_mount_exists_in_the_repo(config):
    binds = [(name, source) for name, service in config["services"].items()
             for source, _, _ in _volumes(service) if source.startswith("/")]
    assert {name for name, _ in binds} == {"nginx", "prometheus", "grafana"}
    for name, source in binds:
        path = Path(source)
        assert path.is_relative_to(ROOT), f"{name} mounts {source} from outside the repo"
        assert path.exists(), f"{name} mounts {source}, missing from the repo"


def test_config_mounts_are_read_only_and_data_in_named_volumes(config):
    named = set(config["volumes"])
    for name, service in config["services"].items():
        for source, target, mode in _volumes(service):
            if source.startswith("/"):
                assert mode == "ro", f"{name}: {target} should be mounted read-only"
            else:
                assert source in named, f"{name}: {source} is not a named volume"
    assert ("models", "/models", "ro") in _volumes(config["services"]["api"])


def test_images_are_pinned(config):
    for name, service in config["services"].items():
        image = service["image"]
        tag = image.rpartition(":")[2] if ":" in image else ""
        assert tag and tag != "latest", f"{name}: image {image} is not pinned"
    assert re.fullmatch(r"prom/prometheus:v2\.\d+\.\d+", config["services"]["prometheus"]["image"])
    assert re.fullmatch(r"grafana/grafana:1[12]\.\d+\.\d+", config["services"]["grafana"]["image"])
    base = re.search(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.M).group(1)
    assert base.startswith("python:3.11") and "slim" in base


def _prometheus_job(job: str) -> dict:
    prom = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    (scrape,) = [s for s in prom["scrape_configs"] if s["job_name"] == job]
    return scrape


def test_only_nginx_publishes_the_api_and_prometheus_finds_every_replica(config):
    """`docker compose up --scale api=3` needs an api without host ports, and one scrape
    target per replica: Docker's DNS answers the service name with every replica's address."""
    api, nginx = config["services"]["api"], config["services"]["nginx"]
    assert "ports" not in api, "a fixed host port on api makes --scale api=N fail"
    assert set(api["expose"]) == {"8000", "9200"}
    assert [(p["published"], p["target"]) for p in _ports(nginx)] == [(8000, 8000)]
    job = _prometheus_job("accident-api")
    assert "static_configs" not in job
    assert job["dns_sd_configs"] == [{"names": ["api"], "type": "A", "port": 9200,
                                      "refresh_interval": "5s"}]
    for name, service in config["services"].items():
        assert all(p["target"] != 9200 for p in _ports(service)), name


def test_nginx_config_is_mounted_and_points_at_the_api_service(config):
    nginx = config["services"]["nginx"]
    (source, target, mode), = _volumes(nginx)
    assert (Path(source), mode) == (ROOT / "deploy" / "nginx", "ro")
    command = nginx["command"]
    assert command[:2] == ["nginx", "-p"] and command[command.index("-c") + 1] == \
        f"{target}/nginx.conf"
    # the prefix (pid, temporary files) is writable although the root filesystem is not
    assert nginx["read_only"] is True and command[2].rstrip("/") in nginx["tmpfs"]
    upstream = (Path(source) / "upstream.conf").read_text()
    assert re.search(r"^resolver 127\.0\.0\.11 valid=\d+s", upstream, re.M), "Docker's DNS"
    server, = re.findall(r"^\s*server (\S+) (.*);", upstream, re.M)
    assert server[0] == "api:8000" and "resolve" in server[1].split()
    listen = (Path(source) / "listen.conf").read_text()
    assert re.search(r"^listen 8000;", listen, re.M)
    assert nginx["depends_on"]["api"]["condition"] == "service_healthy"


def test_nginx_image_resolves_upstream_names_again():
    """`server ... resolve` outside NGINX Plus needs nginx >= 1.27.3 (1.28 stable)."""
    image = yaml.safe_load(COMPOSE.read_text())["services"]["nginx"]["image"]
    version = re.fullmatch(r"nginx:(\d+)\.(\d+)\.(\d+)-alpine", image).groups()
    assert tuple(map(int, version)) >= (1, 27, 3), image


def test_published_ports_bind_to_loopback_unless_bind_addr_says_otherwise(config, tmp_path):
    published = {name: [p.get("host_ip") for p in _ports(service)]
                 for name, service in config["services"].items() if service.get("ports")}
    assert published == {"nginx": ["127.0.0.1"], "prometheus": ["127.0.0.1"],
                         "grafana": ["127.0.0.1"]}
    done = compose(tmp_path, "config", env_text="BIND_ADDR=0.0.0.0\n")
    assert done.returncode == 0, done.stderr
    assert {p.get("host_ip") for s in yaml.safe_load(done.stdout)["services"].values()
            for p in _ports(s)} == {"0.0.0.0"}


def test_grafana_datasource_points_at_the_prometheus_service(config):
    sources = yaml.safe_load(
        (ROOT / "grafana-provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = [s for s in sources["datasources"] if s["uid"] == "prometheus"]
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", source["url"]).groups()
    assert host in config["services"]
    assert [p["target"] for p in _ports(config["services"][host])] == [int(port)]


def test_grafana_home_dashboard_is_the_provisioned_one(config):
    grafana = config["services"]["grafana"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    (source, target, _), = [v for v in _volumes(grafana) if v[1] == "/etc/grafana/provisioning"]
    local = Path(source) / Path(home).relative_to(target)
    assert local.is_file(), f"home dashboard {home} is not {local} in the repo"
    assert '"uid": "accident-api"' in local.read_text()


def test_grafana_security_settings(config):
    env = config["services"]["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "", "empty: the entry point decides by BIND_ADDR"
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "", "empty: generated on the first start"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"


def test_grafana_entry_point_is_the_repos_script_then_the_images(config):
    """The script is mounted from docker/ and execs /run.sh (the image's ENTRYPOINT, which
    loads GF_*__FILE); it writes the password into grafana-data, mounted where the image's
    GF_PATHS_DATA (/var/lib/grafana) points."""
    grafana = config["services"]["grafana"]
    shell, script, image_entrypoint = grafana["entrypoint"]
    assert (shell, image_entrypoint) == ("/bin/sh", "/run.sh")
    assert (str(ROOT / "docker" / "grafana-entrypoint.sh"), script, "ro") in _volumes(grafana)
    assert ("grafana-data", "/var/lib/grafana", "rw") in _volumes(grafana)


def test_grafana_starts_from_the_compose_defaults(config, grafana_entrypoint):
    """The entry point, given the environment compose resolves with no .env: anonymous
    viewing on (loopback), a generated password handed over as a file."""
    start = grafana_entrypoint(config["services"]["grafana"]["environment"])
    assert start.code == 0, start.output
    assert start.env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    password_file = grafana_entrypoint.data / "admin-password"
    assert start.env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == str(password_file)
    assert "GF_SECURITY_ADMIN_PASSWORD" not in start.env
    assert start.output.count(password_file.read_text().strip()) == 1


@needs_compose
@pytest.mark.parametrize("env_text, code, anonymous", [
    ("BIND_ADDR=0.0.0.0\n", 0, "false"),
    ("BIND_ADDR=0.0.0.0\nGF_AUTH_ANONYMOUS_ENABLED=true\n", 1, None),
])
def test_grafana_exposed_beyond_loopback_requires_sign_in(tmp_path, grafana_entrypoint,
                                                          env_text, code, anonymous):
    done = compose(tmp_path, "config", env_text=env_text)
    assert done.returncode == 0, done.stderr
    grafana = yaml.safe_load(done.stdout)["services"]["grafana"]
    assert grafana["environment"]["BIND_ADDR"] == _ports(grafana)[0]["host_ip"] == "0.0.0.0"
    start = grafana_entrypoint(grafana["environment"])
    assert start.code == code, start.output
    assert (start.env or {}).get("GF_AUTH_ANONYMOUS_ENABLED") == anonymous


def test_no_secret_in_the_committed_stack_files(config):
    example = dict(re.findall(r"^(\w+)=(.*)$", (ROOT / ".env.example").read_text(), re.M))
    assert {name: value for name, value in example.items()
            if SECRET_NAME.search(name) and value} == {}
    for name, service in config["services"].items():
        for variable, value in service.get("environment", {}).items():
            if SECRET_NAME.search(variable):
                assert value == "", f"{name}: {variable} has a value in docker-compose.yml"


def test_services_run_read_only_with_healthchecks(config):
    services = config["services"]
    for name in ("trainer", "api", "nginx", "prometheus", "grafana", "load", "report"):
        assert services[name].get("read_only") is True, name
    assert services["api"]["depends_on"]["trainer"]["condition"] == \
        "service_completed_successfully"
    assert services["load"]["profiles"] == ["load"]
    assert "--url=http://nginx:8000" in services["load"]["command"], "load goes through nginx"
    assert services["load"]["depends_on"]["nginx"]["condition"] == "service_healthy"
    for name in ("nginx", "prometheus", "grafana"):
        assert "healthcheck" in services[name], name
    assert "/health/live" in " ".join(services["nginx"]["healthcheck"]["test"])


@needs_compose
@pytest.mark.parametrize("env_text", [
    "", "LOAD_REPLAY=/data/replay\nLOAD_REPLAY_YEAR=2021\nLOAD_FEEDBACK=0.5,60\n"
        "LOAD_CONCEPT_DRIFT=on\nLOAD_MIX=valid=0.9,invalid=0.1\n"])
def test_the_load_command_is_one_load_run_py_accepts(tmp_path, env_text):
    """The `load` service's command as compose resolves it, parsed by load/run.py itself:
    the default (card-drawn traffic) and a replay of the `data` volume with feedback and
    concept drift."""
    from load import run as load_cli

    done = compose(tmp_path, "--profile", "load", "config", env_text=env_text)
    assert done.returncode == 0, done.stderr
    service = yaml.safe_load(done.stdout)["services"]["load"]
    assert service["command"][:2] == ["python", "load/run.py"]
    args = load_cli.parse_args(service["command"][2:])
    assert ("data", "/data", "ro") in _volumes(service), "replayed files come read-only"
    if not env_text:
        assert (args.replay, args.feedback, args.concept_drift, args.year) == \
            ("", None, False, None)
        assert args.mix == "valid=0.8,invalid=0.1,notfound=0.05,batch=0.05"
        return
    assert (args.replay, args.year, args.feedback, args.concept_drift) == \
        ("/data/replay", 2021, (0.5, 60.0), True)
    assert args.mix == "valid=0.9,invalid=0.1" and args.duration == 300 and args.loop


def test_services_built_from_the_api_image_but_not_serving_disable_its_healthcheck(config):
    """The Dockerfile's HEALTHCHECK probes /health/ready on :8000: inherited by the trainer
    and the load generator it would mark them unhealthy for as long as they run."""
    services = config["services"]
    for name in ("trainer", "load", "report"):
        if name != "report":  # the same Dockerfile, with the report extra (its own tag)
            assert services[name]["image"] == services["api"]["image"], name
        # `disable: true`, which docker-compose 1.29 resolves to the equivalent test NONE
        assert services[name].get("healthcheck") in ({"disable": True},
                                                     {"test": ["NONE"]}), name
    assert "healthcheck" not in services["api"], "the api keeps the image's own HEALTHCHECK"


def test_env_example_documents_every_variable():
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    documented = set(re.findall(r"^(\w+)=", (ROOT / ".env.example").read_text(), re.M))
    assert used <= documented, f"not in .env.example: {sorted(used - documented)}"


def test_dockerfile_layers_user_and_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith(("#", " "))]
    deps = text.index("COPY setup.cfg pyproject.toml constraints.txt ./")
    code = text.index("COPY . .")
    assert deps < text.index("pip install -c constraints.txt -r") < code, \
        "dependencies must be installed first"
    user = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["docker/entrypoint.sh"]' in lines
    assert 'CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]' in lines


def test_dockerignore_keeps_local_state_out():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "data", "models", ".env"} <= ignored


def _healthcheck_command() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return json.loads(re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", text, re.M).group(1))


@pytest.mark.parametrize("ready, code", [(True, 0), (False, 1)])
def test_dockerfile_healthcheck_probes_readiness(fake_api, ready, code):
    """Run the image's HEALTHCHECK command against a local server: 200 -> 0, 503 -> 1."""
    fake_api.ready = ready
    command = _healthcheck_command()
    assert command[0] == "python" and "/health/ready" in command[-1]
    port = fake_api.url.rsplit(":", 1)[1]
    done = subprocess.run([sys.executable, *command[1:]], capture_output=True, timeout=20,
                          env={"PATH": os.environ["PATH"], "PORT": port})
    assert done.returncode == code, done.stderr


def test_dockerfile_dependency_layer_reads_pinned_requirements():
    """Run the Dockerfile's requirements extraction on this setup.cfg: pinned lines only."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", "")
    code = re.search(r'python -c "(.*?)" > /tmp/requirements.txt', text).group(1)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    requirements = done.stdout.split()
    assert done.returncode == 0 and requirements, done.stderr
    assert all(re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[\w.]+", line) for line in requirements)
    names = {line.split("==")[0].lower() for line in requirements}
    assert {"gunicorn", "flask", "prometheus-client", "requests"} <= names


def test_the_report_service_reads_the_api_log_read_only(config):
    """`docker compose run --rm -T report ...`: the api's prediction log and models, mounted
    read-only, the same log settings, the image built with the report extra."""
    report, api = config["services"]["report"], config["services"]["api"]
    assert report["profiles"] == ["report"]
    assert report["entrypoint"] == ["accident-api", "report"]
    assert report["command"] == ["--since", "7d", "--out", "-"]
    assert report["build"]["args"] == {"EXTRAS": "report"}
    assert report["image"] == "accident-api-report:local" != api["image"]
    log_volume = [v for v in _volumes(api) if v[0] == "prediction-log"]
    assert [(s, t) for s, t, _ in log_volume] == [("prediction-log", "/prediction-log")]
    assert set(_volumes(report)) == {("prediction-log", "/prediction-log", "ro"),
                                     ("models", "/models", "ro")}
    for name in ("DATA_DIR", "PREDICTION_LOG_URL"):
        assert report["environment"][name] == api["environment"][name], name
    assert "ports" not in report and "depends_on" not in report


def test_dockerfile_extras_add_their_pinned_requirements():
    """EXTRAS=report (the report service's build argument) adds Evidently's pin."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", "")
    assert re.search(r'^ARG EXTRAS=""$', text, re.M)
    code = re.search(r'python -c "(.*?)" > /tmp/requirements.txt', text).group(1)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=30, env={**os.environ, "EXTRAS": "report"})
    requirements = done.stdout.split()
    assert done.returncode == 0, done.stderr
    assert all(re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[\w.]+", line) for line in requirements)
    assert "evidently==0.7.23" in requirements and "gunicorn==27.0.1" in requirements
