"""Labelled traffic for the model-quality rules and panels (prometheus/rules/model_quality.yml):
true outcomes for served predictions, and what the rules need to show a value."""
import re
from pathlib import Path

import yaml

RULES_DIR = Path(__file__).resolve().parent.parent / "prometheus" / "rules"
# The model card's test metrics as a gauge; rules and panels that compare with the card need it.
CARD_METRIC = "model_reference_metric"
FLOOR = "job_model_version_metric:model_reference_metric:minus_tolerance"


def sample_guards() -> dict:
    """(source, window) -> the minimum count the quality ratios need, read from the rules:
    source `model_feedback` (labels) or `model_expected_outcome` (predictions), window 1h or 1d."""
    groups = yaml.safe_load((RULES_DIR / "model_quality.yml").read_text())["groups"]
    guards = {}
    for rule in (rule for group in groups for rule in group["rules"]):
        name = re.fullmatch(r"job_model_version_outcome:(\w+):increase(\w+)",
                            rule.get("record", ""))
        if name:
            guards[name.groups()] = float(re.search(r">= ([0-9.]+)\)\s*$", rule["expr"]).group(1))
    return guards


def alert_tolerance() -> float:
    """How far below the card's value live quality may fall: the floor rule in alerts.yml."""
    groups = yaml.safe_load((RULES_DIR / "alerts.yml").read_text())["groups"]
    (floor,) = [rule["expr"] for group in groups for rule in group["rules"]
                if rule.get("record") == FLOOR]
    return float(re.fullmatch(r".* - ([0-9.]+)\s*", floor, re.S).group(1))


def labels(answers: list[dict], wrong_every: int = 5) -> list[dict]:
    """POST /feedback items for prediction answers: the predicted class as the true outcome,
    except for the 1st, 6th, 11th ... answer of each predicted class, which gets the other one,
    so every confusion cell is used once each class has two answers."""
    seen = {0: 0, 1: 0}
    items = []
    for answer in answers:
        predicted = answer["prediction"]
        wrong = seen[predicted] % wrong_every == 0
        seen[predicted] += 1
        items.append({"prediction_id": answer["prediction_id"],
                      "actual": 1 - predicted if wrong else predicted})
    return items


def needs_card(expr: str) -> bool:
    """Whether a query or a recorded series is built on the model card's metrics gauge (the
    recorded ones carry its name: `job_model_version_metric:model_reference_metric:...`)."""
    return CARD_METRIC in expr
