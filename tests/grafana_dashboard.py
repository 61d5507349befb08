"""Reading the provisioned Grafana dashboard: its panels, their PromQL, Grafana's variables."""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GRAFANA_DIR = ROOT / "grafana-provisioning"
DASHBOARD_PATH = GRAFANA_DIR / "dashboards" / "json" / "accident-api.json"

# The sketch's five panels (seed-README "Panels Overview"): title -> PromQL, verbatim.
SEED_PANELS = {
    "Total Predictions": "api_predict_total",
    "Avg Inference Time":
        "rate(inference_time_seconds_sum[30m]) / rate(inference_time_seconds_count[30m])",
    "Requests/sec by Status": "sum by (status) (rate(http_requests_total[1m]))",
    "p95 Latency (5m)": "histogram_quantile(0.95, rate(inference_time_seconds_bucket[5m]))",
    "Error Rate (%)":
        '(sum(rate(http_requests_total{status=~"4..|5.."}[5m])) / '
        "sum(rate(http_requests_total[5m]))) * 100",
}


def load_dashboard():
    """The dashboard JSON as a dict."""
    return json.loads(DASHBOARD_PATH.read_text())


def panels(dashboard):
    """Every non-row panel, including panels nested in collapsed rows."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def expressions(dashboard):
    """(panel title, PromQL) for every target of every panel."""
    return [(panel["title"], target["expr"])
            for panel in panels(dashboard) for target in panel["targets"]]


def substitute(expr, variables=None):
    """Replace Grafana's built-in interval variables (and given template variables) so
    Prometheus can evaluate the expression directly."""
    values = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}
    values.update(variables or {})
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), m.group(0)), expr)
