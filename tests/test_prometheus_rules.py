"""Prometheus config and rules: promtool validation, promtool unit tests, and the contract."""
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PROM_DIR = ROOT / "prometheus"
RULE_FILES = sorted((PROM_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROM_DIR / "rules" / "tests").glob("*.yml"))
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None,
                                    reason="promtool not installed (apt: prometheus)")


def _promtool(*args):
    """Run promtool in the prometheus/ directory (paths in the config are relative to it)."""
    return subprocess.run([PROMTOOL, *args], cwd=PROM_DIR, capture_output=True, text=True,
                          timeout=60)


def _rules():
    """Every rule of every rule file, as dicts."""
    return [rule for path in RULE_FILES
            for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


@needs_promtool
def test_promtool_check_config():
    # check config also loads and checks every file matched by rule_files.
    result = _promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    for path in RULE_FILES:
        assert f"rules/{path.name}" in result.stdout + result.stderr


@needs_promtool
def test_promtool_check_rules():
    result = _promtool("check", "rules", *[str(p.relative_to(PROM_DIR)) for p in RULE_FILES])
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests():
    assert RULE_TESTS, "no promtool unit tests in prometheus/rules/tests/"
    result = _promtool("test", "rules", *[str(p.relative_to(PROM_DIR)) for p in RULE_TESTS])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout


def test_scrape_config_matches_compose_contract():
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # every replica of the compose service `api` is its own target (tests/test_compose.py)
    (discovery,) = jobs["accident-api"]["dns_sd_configs"]
    assert (discovery["names"], discovery["type"], discovery["port"]) == (["api"], "A", 9200)
    assert "prometheus" in jobs
    assert config["rule_files"] == ["rules/*.yml"]


QUALITY_RATIOS = {f"job_model_version:model_{source}_{metric}:ratio_{window}"
                  for source in ("feedback", "expected")
                  for metric in ("accuracy", "precision", "recall", "f1")
                  for window in ("1h", "1d")}


def test_contract_recording_rules_exist():
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    assert {"feature:model_psi:5m", "feature:model_psi:1h"} <= recorded
    assert QUALITY_RATIOS | {"job_model_version_metric:model_reference_metric:max",
                             "job_model_version_metric:model_reference_metric:minus_tolerance"
                             } <= recorded


def test_quality_alerts_compare_with_the_one_floor():
    # The tolerance is written once, on the floor rule; the alerts name the floor, no number.
    rules = {rule.get("alert") or rule["record"]: rule for rule in _rules()}
    floor = rules["job_model_version_metric:model_reference_metric:minus_tolerance"]["expr"]
    assert floor.endswith(" - 0.05")
    for name in ("ModelRealisedQualityLow", "ModelEstimatedAccuracyLow"):
        expr = rules[name]["expr"]
        assert "job_model_version_metric:model_reference_metric:minus_tolerance" in expr, name
        assert "0.05" not in expr, name


def test_rule_groups_set_no_own_interval():
    # The integration test shortens evaluation through global.evaluation_interval only.
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            assert "interval" not in group, f"{path.name}:{group['name']}"


def test_every_alert_is_documented_and_unit_tested():
    alerts = [rule for rule in _rules() if "alert" in rule]
    names = {rule["alert"] for rule in alerts}
    assert {"AccidentApiDown", "AccidentApiHighErrorRatio", "AccidentApiSlowInference",
            "AccidentApiNotReady", "ModelFeatureDrift", "ModelRealisedQualityLow",
            "ModelEstimatedAccuracyLow", "ModelFeedbackStalled"} <= names
    for rule in alerts:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
    tested = {case["alertname"]
              for path in RULE_TESTS
              for test in yaml.safe_load(path.read_text())["tests"]
              for case in test.get("alert_rule_test", [])
              if case.get("exp_alerts")}
    assert names <= tested, f"alerts never shown firing in a promtool test: {names - tested}"
