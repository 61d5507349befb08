"""Static checks of Grafana provisioning: datasource, provider, and the dashboard JSON."""
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.grafana_dashboard import (DASHBOARD_PATH, GRAFANA_DIR, ROOT, SEED_PANELS, expressions,
                                     load_dashboard, panels, substitute)

CONTAINER_ROOT = "/etc/grafana/provisioning"  # where compose mounts ./grafana-provisioning
CURRENT_PANEL_TYPES = {"timeseries", "stat", "bargauge", "gauge", "table", "heatmap",
                       "barchart", "piechart", "text"}


@pytest.fixture(scope="module")
def dashboard():
    return load_dashboard()


def test_datasource_has_fixed_uid_and_compose_url():
    config = yaml.safe_load((GRAFANA_DIR / "datasources" / "prometheus.yml").read_text())
    [source] = config["datasources"]
    assert source["uid"] == "prometheus"
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"


def test_provider_path_points_at_the_dashboard_json():
    config = yaml.safe_load((GRAFANA_DIR / "dashboards" / "accident-api.yml").read_text())
    [provider] = config["providers"]
    assert provider["type"] == "file"
    container_path = provider["options"]["path"]
    assert container_path.startswith(CONTAINER_ROOT + "/")
    local_dir = GRAFANA_DIR / container_path[len(CONTAINER_ROOT) + 1:]
    assert DASHBOARD_PATH.parent == local_dir
    assert sorted(p.name for p in local_dir.glob("*.json")) == [DASHBOARD_PATH.name]


def test_compose_mounts_provisioning_where_the_provider_expects_it():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]

    def mounts(service):
        return [v.split(":")[:2] for v in services[service].get("volumes", [])
                if isinstance(v, str)]

    assert ["./grafana-provisioning", CONTAINER_ROOT] in mounts("grafana")
    # prometheus.yml's relative rule_files glob resolves inside this mount.
    assert ["./prometheus", "/etc/prometheus"] in mounts("prometheus")


def test_dashboard_identity(dashboard):
    assert dashboard["uid"] == "accident-api"
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["title"]


def test_panels_are_current_types_with_targets(dashboard):
    found = list(panels(dashboard))
    assert len(found) >= 20
    for panel in found:
        assert panel["type"] in CURRENT_PANEL_TYPES, (panel["title"], panel["type"])
        assert panel["targets"], panel["title"]
        assert all(t.get("expr", "").strip() for t in panel["targets"]), panel["title"]
        assert panel.get("description"), panel["title"]


def test_every_datasource_reference_uses_the_provisioned_uid(dashboard):
    for panel in panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "prometheus"}
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"]["uid"] == "prometheus"
    assert '"uid": "${' not in DASHBOARD_PATH.read_text()  # no import-time placeholders


def test_panel_ids_unique_and_layout_fits(dashboard):
    ids = [p["id"] for p in dashboard["panels"]] + [p["id"] for p in panels(dashboard)
                                                   if p not in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, panel["title"]


def test_seed_panels_keep_their_queries_verbatim(dashboard):
    by_title = {panel["title"]: [t["expr"] for t in panel["targets"]]
                for panel in panels(dashboard)}
    for title, expr in SEED_PANELS.items():
        assert expr in by_title.get(title, []), title


def test_dashboard_rows_cover_red_model_and_drift(dashboard):
    exprs = " ".join(expr for _, expr in expressions(dashboard))
    for metric in ("flask_http_request_duration_seconds_bucket", "flask_http_requests_in_flight",
                   "model_predictions_total", "model_prediction_probability_bucket",
                   "model_batch_size", "model_input_rejected_total", "model_info",
                   "feature:model_psi:5m", "feature:model_psi:1h", "topk("):
        assert metric in exprs, metric
    # Our own (non-seed) duration panels aggregate buckets before taking the quantile.
    for title, expr in expressions(dashboard):
        if "histogram_quantile" in expr and title not in SEED_PANELS:
            assert "sum by (" in expr and "le)" in expr, title


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_every_panel_expression_parses(dashboard, tmp_path):
    # promtool has no offline "parse this expression"; a rule file of them is checked the same way.
    rules = [{"record": f"dashboard:panel_expr:{i}", "expr": substitute(expr, {"feature": "hour"})}
             for i, (_, expr) in enumerate(expressions(dashboard))]
    rule_file = Path(tmp_path) / "dashboard_exprs.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(["promtool", "check", "rules", str(rule_file)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- The seed's panels over replicas ------------------------------------------------------
# One API instance, or three sharing the same traffic unevenly (some series missing on some
# replicas): per-minute counter increments. Each seed panel's total (its query B when the
# seed query keeps one series per instance, else the seed query) must read the same.
ONE = ["api-1:9200"]
THREE = ["api-1:9200", "api-2:9200", "api-3:9200"]
SPLIT = {"api-1:9200": 3 / 8, "api-2:9200": 3 / 8, "api-3:9200": 2 / 8}
TRAFFIC = {   # series -> increments per minute for the whole service, and how it is shared
    'http_requests_total{endpoint="predictions.predict",method="POST",status="200"}': (80, None),
    'http_requests_total{endpoint="predictions.predict",method="POST",status="422"}':
        (10, {"api-1:9200": 0.5, "api-2:9200": 0.5}),
    'http_requests_total{endpoint="predictions.predict",method="POST",status="500"}':
        (10, {"api-1:9200": 1.0}),
    'api_predict_total{outcome="success"}': (80, None),
    'api_predict_total{outcome="error"}': (20, {"api-1:9200": 1.0}),
    'inference_time_seconds_count': (80, {"api-1:9200": 0.5, "api-2:9200": 0.5}),
    'inference_time_seconds_sum': (1.6, {"api-1:9200": 0.75, "api-2:9200": 0.25}),
    'inference_time_seconds_bucket{le="0.01"}': (40, {"api-1:9200": 1.0}),
    'inference_time_seconds_bucket{le="0.1"}': (80, {"api-1:9200": 0.5, "api-2:9200": 0.5}),
    'inference_time_seconds_bucket{le="+Inf"}': (80, {"api-1:9200": 0.5, "api-2:9200": 0.5}),
}
# title -> (scale, expected samples at 40m): values of round(total * scale)
SEED_TOTALS = {
    "Total Predictions": (1, [('{outcome="success"}', 3200), ('{outcome="error"}', 800)]),
    "Avg Inference Time": (1e6, [("{}", 20000)]),                     # 1.6 s / 80 = 20 ms
    "Requests/sec by Status": (60, [('{status="200"}', 80), ('{status="422"}', 10),
                                    ('{status="500"}', 10)]),
    # rank 76 of 80: 0.01 + (0.1 - 0.01) * (76 - 40) / (80 - 40) = 0.091 s
    "p95 Latency (5m)": (1e4, [("{}", 910)]),
    "Error Rate (%)": (1, [("{}", 20)]),
}


def _input_series(instances: list[str]) -> list[dict]:
    """promtool input series: TRAFFIC on one instance, or shared out over three."""
    series = []
    for name, (per_minute, split) in TRAFFIC.items():
        shares = {instances[0]: 1.0} if len(instances) == 1 else (split or SPLIT)
        for instance, share in shares.items():
            labels = f'job="accident-api",instance="{instance}"'
            selector = (name.replace("{", "{" + labels + ",") if "{" in name
                        else f"{name}{{{labels}}}")
            series.append({"series": selector, "values": f"0+{per_minute * share:g}x50"})
    return series


def seed_panel_totals(dashboard) -> dict:
    """title -> the PromQL of the seed panel's service-wide total (query B, else A)."""
    by_title = {panel["title"]: panel for panel in panels(dashboard)}
    return {title: next((t["expr"] for t in by_title[title]["targets"] if t["refId"] == "B"),
                        by_title[title]["targets"][0]["expr"]) for title in SEED_PANELS}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
@pytest.mark.parametrize("replicas", [ONE, THREE], ids=["one instance", "three instances"])
def test_seed_panels_total_the_same_over_three_replicas_as_over_one(dashboard, tmp_path,
                                                                   replicas):
    """The values one instance would show, and how the panels' queries get them."""
    totals = seed_panel_totals(dashboard)
    cases = [{"expr": f"round(({totals[title]}) * {scale:g})", "eval_time": "40m",
              "exp_samples": [{"labels": labels, "value": value} for labels, value in samples]}
             for title, (scale, samples) in SEED_TOTALS.items()]
    test_file = tmp_path / "seed_panels_test.yml"
    test_file.write_text(yaml.safe_dump({
        "rule_files": [], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": _input_series(replicas),
                   "promql_expr_test": cases}]}))
    result = subprocess.run(["promtool", "test", "rules", str(test_file)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
