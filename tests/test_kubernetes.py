"""deploy/kubernetes: every kustomization renders with `kubectl kustomize`, validates (the
Kubernetes schemas of two minor versions, the Prometheus Operator's CRDs, promtool), and holds
together: probes on the app's routes, ports as in Config, a grace period that covers the drain,
a disruption budget, and the dashboard and rules equal to their one source in the repository.
"""
from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.prometheus_operator import v1 as operator_v1
from prometheus_client import REGISTRY, generate_latest

from accident_api.config import Config
from scripts import render_prometheus_rule

pytestmark = pytest.mark.kubernetes

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(f"overlays/{path.name}" for path in (DEPLOY / "overlays").iterdir()
                  if path.is_dir())
TARGETS = ["base"] + OVERLAYS
# 1.30: the oldest minor with the preStop `sleep` action on by default; 1.37: the newest one
# kubernetes-validate has schemas for.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
OPERATOR_GROUP = "monitoring.coreos.com"
OPERATOR_MODELS = {"ServiceMonitor": operator_v1.ServiceMonitor,
                   "PrometheusRule": operator_v1.PrometheusRule}
LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
          "app.kubernetes.io/version")
RELEASE = "kube-prometheus-stack"  # the Helm release name overlays/default selects
DASHBOARD = ROOT / "grafana-provisioning" / "dashboards" / "json" / "accident-api.json"
ADAPTER_VALUES = DEPLOY / "overlays" / "requests-in-flight" / "prometheus-adapter-values.yaml"
MIN_GRACE_MARGIN = 5  # seconds left for gunicorn's master to exit after its workers


def _missing(what: str):
    """Skip locally; under CI (CI=true) a tool that `make test` installs must be there."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing under CI: `make test` installs it")
    pytest.skip(f"{what} is not installed (`make test` installs it)")


def _kustomize_major(kubectl: str) -> int:
    done = subprocess.run([kubectl, "version", "--client", "-o", "json"], capture_output=True,
                          text=True, timeout=30, check=False)
    version = json.loads(done.stdout).get("kustomizeVersion", "") if done.returncode == 0 else ""
    match = re.match(r"v(\d+)\.", version)
    return int(match.group(1)) if match else 0


@pytest.fixture(scope="module")
def kubectl() -> str:
    """The pinned kubectl of the virtualenv (make test), else one on PATH with Kustomize >= 5."""
    pinned = Path(sys.prefix) / "bin" / "kubectl"
    for candidate in (str(pinned) if pinned.exists() else None, shutil.which("kubectl")):
        if candidate and _kustomize_major(candidate) >= 5:
            return candidate
    _missing("kubectl with Kustomize >= 5")


@pytest.fixture(scope="module")
def rendered(kubectl) -> dict[str, list[dict]]:
    """{target: the objects `kubectl kustomize deploy/kubernetes/<target>` prints}."""
    objects = {}
    for target in TARGETS:
        done = subprocess.run([kubectl, "kustomize", str(DEPLOY / target)], capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, f"kubectl kustomize {target}: {done.stderr}"
        objects[target] = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    return objects


@pytest.fixture(scope="module")
def promtool() -> str:
    return shutil.which("promtool") or _missing("promtool (Debian package prometheus)")


def one(objects: list[dict], kind: str) -> dict:
    """The single object of `kind` among `objects`."""
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def named(items: list[dict], name: str) -> dict:
    """The single item called `name` (containers, ports, volumes)."""
    found = [item for item in items if item["name"] == name]
    assert len(found) == 1, f"expected one {name!r} in {[item['name'] for item in items]}"
    return found[0]


def pod_spec(objects: list[dict], kind: str = "Deployment") -> dict:
    return one(objects, kind)["spec"]["template"]["spec"]


def api_container(objects: list[dict]) -> dict:
    return named(pod_spec(objects)["containers"], "api")


def container_config(container: dict) -> Config:
    """The Config the container's process builds from its environment."""
    return Config.from_env({env["name"]: env["value"] for env in container.get("env", [])
                            if "value" in env})  # secret references are not settings here


def selects(selector: dict, labels: dict) -> bool:
    return selector.items() <= labels.items()


def package_version() -> str:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config["metadata"]["version"]


# --- rendering and validation ------------------------------------------------------------------

@pytest.mark.parametrize("target", TARGETS)
def test_every_kustomization_renders_with_the_recommended_labels(rendered, target):
    objects = rendered[target]
    assert len({(o["kind"], o["metadata"]["name"]) for o in objects}) == len(objects)
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert all(labels.get(label) for label in LABELS), f"{where}: {labels}"
        assert labels["app.kubernetes.io/name"] == "accident-api", where
        assert labels["app.kubernetes.io/version"] == package_version(), where
        if target != "base" and obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "accident-api", where


def test_every_manifest_file_holds_one_object_named_after_its_kind():
    for kustomization in DEPLOY.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        files = [kustomization.parent / entry for entry in spec.get("resources", [])]
        files += [kustomization.parent / p["path"] for p in spec.get("patches", []) if "path" in p]
        for path in (f for f in files if f.is_file()):
            docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
            assert len(docs) == 1, path
            assert docs[0]["kind"].lower() == path.stem, path


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_core_kinds_validate_strictly_against_the_kubernetes_schemas(rendered, target, version):
    core = [o for o in rendered[target] if not o["apiVersion"].startswith(OPERATOR_GROUP + "/")]
    errors = []
    for obj in core:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except (kubernetes_validate.ValidationError,
                kubernetes_validate.SchemaNotFoundError) as error:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {error}")
    assert not errors, "\n".join(errors)
    assert {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler",
            "NetworkPolicy", "PersistentVolumeClaim", "Job"} <= {o["kind"] for o in core}


def test_a_field_the_schema_lacks_is_refused(rendered):
    """The strict check is not a formality: a misspelt probe field fails it."""
    deployment = json.loads(json.dumps(one(rendered["overlays/default"], "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError, match="'pth' was unexpected"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def strict_operator_check(obj: dict) -> list[str]:
    """Validate against the operator's CRD model; a field the model drops is unknown to it."""
    model = OPERATOR_MODELS[obj["kind"]].model_validate(obj)
    kept = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return [] if kept == obj else [f"{obj['kind']}: fields the CRD does not know: "
                                   f"{json.dumps(obj, sort_keys=True)} became "
                                   f"{json.dumps(kept, sort_keys=True)}"]


@pytest.mark.parametrize("target", OVERLAYS)
def test_prometheus_operator_objects_match_their_crd_schema(rendered, target):
    operator = [o for o in rendered[target] if o["apiVersion"].startswith(OPERATOR_GROUP + "/")]
    assert sorted(o["kind"] for o in operator) == ["PrometheusRule", "ServiceMonitor"]
    for obj in operator:
        assert strict_operator_check(obj) == []


def test_the_crd_check_refuses_unknown_fields_and_bad_durations(rendered):
    monitor = json.loads(json.dumps(one(rendered["overlays/default"], "ServiceMonitor")))
    monitor["spec"]["jobLable"] = "app.kubernetes.io/name"
    assert strict_operator_check(monitor) != []
    monitor = json.loads(json.dumps(one(rendered["overlays/default"], "ServiceMonitor")))
    monitor["spec"]["endpoints"][0]["interval"] = "15 seconds"
    with pytest.raises(ValueError, match="interval"):
        strict_operator_check(monitor)


# --- the PrometheusRule: generated from prometheus/rules -----------------------------------------

def test_the_committed_prometheus_rule_is_what_the_generator_writes():
    assert render_prometheus_rule.MANIFEST.read_text() == render_prometheus_rule.render(), \
        "deploy/kubernetes PrometheusRule is out of date: run make kubernetes-rules"


def test_the_generator_refuses_a_group_name_used_twice(tmp_path):
    for name in ("a.yml", "b.yml"):
        (tmp_path / name).write_text("groups:\n  - name: same\n    rules: []\n")
    with pytest.raises(SystemExit, match="'same' is in both a.yml and b.yml"):
        render_prometheus_rule.render(tmp_path)


@pytest.mark.parametrize("target", OVERLAYS)
def test_rendered_rule_groups_equal_the_rule_files(rendered, target):
    rule = one(rendered[target], "PrometheusRule")
    expected = [group for path in sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
                for group in yaml.safe_load(path.read_text())["groups"]]
    assert rule["spec"]["groups"] == expected


def test_promtool_checks_and_unit_tests_the_rendered_rules(rendered, promtool, tmp_path):
    """The rules as the operator will load them pass `promtool check rules`, and the same
    promtool unit tests as prometheus/rules/ (their rule_files pointed at the extracted file)."""
    extracted = tmp_path / "prometheusrule-groups.yml"
    groups = one(rendered["overlays/default"], "PrometheusRule")["spec"]["groups"]
    extracted.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    done = subprocess.run([promtool, "check", "rules", str(extracted)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in groups)} rules found" in done.stdout
    tests = []
    for source in sorted((ROOT / "prometheus" / "rules" / "tests").glob("*.yml")):
        unit = yaml.safe_load(source.read_text())
        unit["rule_files"] = [str(extracted)]
        tests.append(tmp_path / source.name)
        tests[-1].write_text(yaml.safe_dump(unit, sort_keys=False))
    done = subprocess.run([promtool, "test", "rules", *map(str, tests)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0 and "FAILED" not in done.stdout, done.stdout + done.stderr


# --- cross-object invariants -------------------------------------------------------------------

def test_probes_are_the_app_health_routes_and_answer(rendered, app):
    container = api_container(rendered["overlays/default"])
    routes = app.url_map.bind("localhost")
    expected = {"startupProbe": "meta.ready", "readinessProbe": "meta.ready",
                "livenessProbe": "meta.live"}
    client = app.test_client()
    for probe, endpoint in expected.items():
        http_get = container[probe]["httpGet"]
        assert routes.match(http_get["path"], method="GET")[0] == endpoint, probe
        assert client.get(http_get["path"]).status_code == 200, probe
        assert http_get["port"] == "http", probe


@pytest.mark.parametrize("target", TARGETS)
def test_ports_match_the_config_defaults(rendered, target):
    objects = rendered[target]
    container = api_container(objects)
    config, defaults = container_config(container), Config()
    assert (config.PORT, config.METRICS_PORT) == (defaults.PORT, defaults.METRICS_PORT)
    assert config.HOST == "0.0.0.0"  # reachable from the kubelet and the Service
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": config.PORT, "metrics": config.METRICS_PORT}
    service = one(objects, "Service")
    assert {(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]} == \
        {("http", config.PORT, "http"), ("metrics", config.METRICS_PORT, "metrics")}
    assert selects(service["spec"]["selector"],
                   one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"])
    policy_ports = {port["port"] for rule in one(objects, "NetworkPolicy")["spec"]["ingress"]
                    for port in rule["ports"]}
    assert policy_ports == set(ports)


@pytest.mark.parametrize("target", TARGETS)
def test_grace_period_covers_the_prestop_sleep_and_gunicorn_graceful_timeout(rendered, target):
    spec = pod_spec(rendered[target])
    container = named(spec["containers"], "api")
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    graceful = container_config(container).GRACEFUL_TIMEOUT
    assert pre_stop > 0
    assert spec["terminationGracePeriodSeconds"] >= pre_stop + graceful + MIN_GRACE_MARGIN


@pytest.mark.parametrize("target", TARGETS)
def test_a_disruption_budget_guards_two_or_more_replicas(rendered, target):
    objects = rendered[target]
    deployment = one(objects, "Deployment")
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    replicas = hpa["spec"]["minReplicas"]
    assert replicas >= 2
    budgets = [o for o in objects if o["kind"] == "PodDisruptionBudget"
               and selects(o["spec"]["selector"]["matchLabels"],
                           deployment["spec"]["template"]["metadata"]["labels"])]
    assert len(budgets) == 1
    assert 0 < budgets[0]["spec"]["maxUnavailable"] < replicas  # drains can go on, one at a time


@pytest.mark.parametrize("target", OVERLAYS)
def test_the_dashboard_configmap_is_the_provisioned_json(rendered, target):
    dashboards = [o for o in rendered[target] if o["kind"] == "ConfigMap"
                  and o["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(dashboards) == 1
    assert dashboards[0]["data"] == {DASHBOARD.name: DASHBOARD.read_text()}
    # kube-prometheus-stack provisions its Prometheus datasource with this uid
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {item["datasource"]["uid"]
            for panel in dashboard["panels"] + dashboard["templating"]["list"]
            for item in [panel, *panel.get("targets", [])] if item.get("datasource")}
    assert uids == {"prometheus"}


@pytest.mark.parametrize("target", OVERLAYS)
def test_the_servicemonitor_scrapes_every_pod_as_the_job_the_rules_select(rendered, target):
    objects = rendered[target]
    monitor, service = one(objects, "ServiceMonitor"), one(objects, "Service")
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    groups = one(objects, "PrometheusRule")["spec"]["groups"]
    selected = {name for group in groups for rule in group["rules"]
                for name in re.findall(r'job="([^"]+)"', rule["expr"])}
    assert selected == {job} == {"accident-api"}
    # kube-prometheus-stack's Prometheus selects both by its Helm release name
    for obj in (monitor, one(objects, "PrometheusRule")):
        assert obj["metadata"]["labels"]["release"] == RELEASE


@pytest.mark.parametrize("target", TARGETS)
def test_the_metrics_port_is_open_to_the_monitoring_namespace_only(rendered, target):
    objects = rendered[target]
    policy = one(objects, "NetworkPolicy")["spec"]
    pods = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    trainer = one(objects, "Job")["spec"]["template"]["metadata"]["labels"]
    assert selects(policy["podSelector"]["matchLabels"], pods)
    assert not selects(policy["podSelector"]["matchLabels"], trainer)
    assert policy["policyTypes"] == ["Ingress"]
    by_port = {port["port"]: rule.get("from") for rule in policy["ingress"]
               for port in rule["ports"]}
    assert by_port == {
        "http": None,  # any client in the cluster
        "metrics": [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "monitoring"}}}],
    }


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_pods_run_as_the_image_user_on_a_read_only_root_filesystem(rendered, kind):
    spec = pod_spec(rendered["overlays/default"], kind)
    uid = re.search(r"^USER (\d+):", (ROOT / "Dockerfile").read_text(), re.M).group(1)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == int(uid)
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for container in spec.get("initContainers", []) + spec["containers"]:
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]}}, container["name"]
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys(), container["name"]
        assert "memory" in resources["limits"], container["name"]


def test_the_multiprocess_directory_and_tmp_are_per_pod_emptydirs(rendered):
    spec = pod_spec(rendered["overlays/default"])
    container = named(spec["containers"], "api")
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    multiproc = container_config(container).PROMETHEUS_MULTIPROC_DIR
    for path in (multiproc, "/tmp"):
        assert "emptyDir" in named(spec["volumes"], mounts[path]), path


@pytest.mark.parametrize("target", TARGETS)
def test_the_trainer_job_fills_the_volume_the_api_reads(rendered, target):
    objects = rendered[target]
    claim = one(objects, "PersistentVolumeClaim")["metadata"]["name"]
    job_spec = pod_spec(objects, "Job")
    trainer = named(job_spec["containers"], "trainer")
    env = {e["name"]: e["value"] for e in trainer["env"]}
    assert trainer["args"] == ["docker/train.sh"] and "command" not in trainer
    assert os.access(ROOT / "docker" / "train.sh", os.X_OK)
    assert env["TRAIN_SOURCE"] == "synthetic"  # the offline default
    assert "FORCE_TRAIN" in (ROOT / "docker" / "train.sh").read_text()

    def claim_mount(spec, container):
        volume = next(v for v in spec["volumes"]
                      if v.get("persistentVolumeClaim", {}).get("claimName") == claim)
        return next(m for m in container["volumeMounts"] if m["name"] == volume["name"])

    assert claim_mount(job_spec, trainer) == {"name": "models", "mountPath": env["MODEL_PATH"]}
    api_spec = pod_spec(objects)
    api = named(api_spec["containers"], "api")
    assert claim_mount(api_spec, api) == {"name": "models", "readOnly": True,
                                          "mountPath": container_config(api).MODEL_PATH}
    # the API pods wait for the card the trainer writes last, under the same mount
    waiter = named(api_spec["initContainers"], "wait-for-model")
    assert f"{claim_mount(api_spec, waiter)['mountPath']}/model_card.json" in waiter["command"][-1]
    # no command: the image's entrypoint (multiprocess directory wiped) then gunicorn
    assert "command" not in api and "args" not in api


@pytest.mark.parametrize("target,access_mode", [("overlays/default", "ReadWriteMany"),
                                                ("overlays/single-node", "ReadWriteOnce")])
def test_the_model_volume_is_shared_across_nodes_unless_single_node(rendered, target,
                                                                     access_mode):
    claim = one(rendered[target], "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == [access_mode]


@pytest.mark.parametrize("target", TARGETS)
def test_the_image_is_the_one_compose_builds(rendered, target):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    image = compose["services"]["api"]["image"]
    spec = pod_spec(rendered[target])
    images = {c["image"] for c in spec["containers"] + spec["initContainers"]}
    images |= {c["image"] for c in pod_spec(rendered[target], "Job")["containers"]}
    assert images == {image}


def test_requests_in_flight_scaling_reads_the_metric_the_adapter_serves(rendered, app):
    objects = rendered["overlays/requests-in-flight"]
    metrics = one(objects, "HorizontalPodAutoscaler")["spec"]["metrics"]
    pods = [m["pods"] for m in metrics if m["type"] == "Pods"]
    assert len(pods) == 1
    assert [m["resource"]["name"] for m in metrics if m["type"] == "Resource"] == ["cpu"]
    (rule,) = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"]
    assert pods[0]["metric"]["name"] == rule["name"]["as"]
    series = re.match(r"(\w+)\{", rule["seriesQuery"]).group(1)
    assert re.fullmatch(rule["name"]["matches"], series)
    # the app exports that gauge (the app fixture registered the metrics)
    assert f"# TYPE {series} gauge" in generate_latest(REGISTRY).decode()
    # reachable: per pod, at most WEB_CONCURRENCY sync workers serve a request at a time
    target = float(pods[0]["target"]["averageValue"])
    assert 0 < target < container_config(api_container(objects)).WEB_CONCURRENCY


def test_the_operations_guide_names_existing_kustomizations():
    guide = (ROOT / "docs" / "operations.md").read_text()
    paths = set(re.findall(r"-k (deploy/kubernetes/[\w/-]+)", guide))
    assert {f"deploy/kubernetes/{target}" for target in OVERLAYS} <= paths
    for path in paths:
        assert (ROOT / path / "kustomization.yaml").is_file(), path


def test_the_guide_s_own_overlay_example_renders_what_it_says(kubectl, tmp_path):
    """docs/operations.md, "Your own overlay": release label, monitoring namespace, image."""
    section = (ROOT / "docs" / "operations.md").read_text().split("### Your own overlay", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    default = os.path.relpath(DEPLOY / "overlays" / "default", tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        example.replace("../../deploy/kubernetes/overlays/default", default))
    done = subprocess.run([kubectl, "kustomize", str(tmp_path)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    objects = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert one(objects, kind)["metadata"]["labels"]["release"] == "prometheus"
    sources = one(objects, "NetworkPolicy")["spec"]["ingress"][1]["from"]
    assert sources == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "observability"}}}]
    assert api_container(objects)["image"] == "registry.example.com/accident-api:0.1.0"
