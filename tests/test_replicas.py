"""Three API replicas behind nginx, scraped by Prometheus as three instances (issue 14).

Real gunicorn instances, nginx and Prometheus on 127.0.0.1 (1 s scrape and rule
evaluation). Load comes from load/run.py's open-model scheduler (load.background).
"""
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml

from load.background import BackgroundLoad, predict_requests
from load.records import RecordSampler, model_card
from tests.fixtures.observability import start_prometheus, stop_prometheus
from tests.fixtures.proxy import backend_address
from tests.grafana_dashboard import SEED_PANELS, expressions, load_dashboard, panels, substitute
from tests.quality_traffic import CARD_METRIC, labels, needs_card, sample_guards
from tests.test_reliability_lifecycle import http_requests_total

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]

RULES_DIR = Path(__file__).resolve().parent.parent / "prometheus" / "rules"
REPLICAS = 3


@pytest.fixture
def three_replicas(replicas_factory, nginx_factory, tmp_path):
    """(replicas, nginx in front of them, Prometheus scraping each as its own instance); the
    replicas write gunicorn's access log, which the SIGKILL test compares with nginx's."""
    servers = replicas_factory(REPLICAS, ACCESS_LOG="1")
    nginx = nginx_factory([backend_address(server) for server in servers])
    (tmp_path / "prometheus").mkdir()
    prometheus = start_prometheus([urlsplit(s.metrics_url).netloc for s in servers],
                                  tmp_path / "prometheus")
    try:
        prometheus.wait_for(lambda: prometheus.scalar('count(up{job="accident-api"} == 1)')
                            == REPLICAS, timeout=30, what="every replica scraped")
        yield servers, nginx, prometheus
    finally:
        stop_prometheus(prometheus)


def per_instance(prometheus, expr) -> dict:
    """instance -> value of `sum by (instance) (expr)`."""
    return {r["metric"]["instance"]: float(r["value"][1])
            for r in prometheus.query(f"sum by (instance) ({expr})")}


def answered_by(nginx) -> Counter:
    """Requests nginx got an answer for, by the replica that gave it (the last one tried)."""
    return Counter(entry["upstream"][-1] for entry in nginx.access_log() if entry["upstream"])


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.1)


def test_sigkill_of_one_replicas_master_mid_load_fails_no_request(three_replicas, seed_record,
                                                                  figures):
    servers, nginx, prometheus = three_replicas
    victim, survivors = servers[0], servers[1:]
    with BackgroundLoad(nginx.url, predict_requests(seed_record), rate=40) as load:
        wait_for(lambda: len(answered_by(nginx)) == REPLICAS and
                 min(answered_by(nginx).values()) >= 10, 30, "every replica answering")
        os.kill(victim.process.pid, signal.SIGKILL)
        killed_after = load.sent
        # nginx has found the victim gone and sent at least one request elsewhere
        wait_for(lambda: any(len(e["upstream"]) > 1 for e in nginx.access_log()), 20,
                 "a request retried on another replica")
        wait_for(lambda: load.sent >= killed_after + 120, 20, "3 s more of load")
    log = nginx.access_log()
    answered = answered_by(nginx)
    retried = [entry["upstream"] for entry in log if len(entry["upstream"]) > 1]
    victim_address = backend_address(victim)
    victim_own_log = victim.logs().count('"POST /predict HTTP/1.0" 200')
    figures(f"3 replicas, master of {victim_address} SIGKILLed after {killed_after} requests: "
            f"{load.summary()}")
    figures(f"answered by replica {dict(answered)}; retried {len(retried)}: {retried}")

    assert load.stats.errors == 0 and load.result.dropped == 0, load.summary()
    assert load.count("200") == load.result.scheduled == len(log)
    assert {entry["status"] for entry in log} == {"200"}
    assert retried and all(tried[0] == victim_address for tried in retried), retried
    # the victim's own access log shows the same answers as nginx's (its worker finished
    # the requests it held after the master died, then exited)
    assert victim_own_log == answered[victim_address]

    # Prometheus: each surviving replica counts exactly what it answered, and the sum over
    # the instances it still scrapes is their total; the victim's target is down
    expected = {urlsplit(s.metrics_url).netloc: answered[backend_address(s)] for s in survivors}
    prometheus.wait_for(lambda: per_instance(prometheus, "http_requests_total") == expected,
                        timeout=20, what=f"per-instance counts {expected}")
    total = prometheus.scalar("sum(http_requests_total)")
    scraped = sum(http_requests_total(s) for s in survivors)
    victim_target = urlsplit(victim.metrics_url).netloc
    victim_up = prometheus.scalar(f'up{{instance="{victim_target}"}}')
    # what Prometheus last read from the victim (nothing if it died before a scrape with counts)
    last_seen = prometheus.scalar(
        f'max_over_time(sum(http_requests_total{{instance="{victim_target}"}})[5m:1s])') or 0.0
    figures(f"Prometheus sum(http_requests_total) {total:.0f} = answered by the survivors "
            f"{sum(expected.values())} (their sidecars: {scraped:.0f}); victim up={victim_up}, "
            f"last scraped count {last_seen:.0f} of the {answered[victim_address]} it answered")
    assert total == sum(expected.values()) == scraped
    assert total + answered[victim_address] == load.count("200")
    assert victim_up == 0
    assert last_seen <= answered[victim_address]


def recorded_series() -> list[str]:
    """Every recording rule's name."""
    return [rule["record"] for path in sorted(RULES_DIR.glob("*.yml"))
            for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "record" in rule]


def per_instance_by_design(dashboard) -> set:
    """Panel queries that show one series per instance on purpose: "Target up", and the
    seed's verbatim queries that keep every series (their panels add a query B, the total)."""
    kept = {panel["targets"][0]["expr"] for panel in panels(dashboard)
            if panel["title"] in SEED_PANELS and len(panel["targets"]) > 1}
    return kept | {'up{job="accident-api"}'}


def query_b(dashboard, title: str) -> str:
    """The total a seed panel adds to its verbatim query."""
    (panel,) = [panel for panel in panels(dashboard) if panel["title"] == title]
    return next(target["expr"] for target in panel["targets"] if target["refId"] == "B")


def test_prometheus_sees_three_instances_and_panels_and_rules_total_over_them(
        three_replicas, seed_record, figures):
    servers, nginx, prometheus = three_replicas
    sent = Counter()

    def send(method, path, status, base=None, **kwargs):
        response = requests.request(method, (base or nginx.url) + path, timeout=10, **kwargs)
        assert response.status_code == status, (path, response.text)
        sent[str(status)] += 1
        return response

    def send_rounds(rounds):
        for _ in range(rounds):
            send("POST", "/predict", 200, json=seed_record)
            send("POST", "/predict/batch", 200, json={"records": [seed_record] * 5})
            send("POST", "/predict", 422, json=dict(seed_record, victim_age=-5))
            send("GET", "/no/such/route", 404)
            send("GET", "/health/ready", 200)
        total = sum(sent.values())
        prometheus.wait_for(lambda: prometheus.scalar("sum(http_requests_total)") == total,
                            timeout=20, what=f"sum(http_requests_total) == {total}")

    # Labelled predictions for the quality rules, straight to each replica: each keeps its
    # own prediction log (SQLite in its DATA_DIR), so a label goes where its prediction was
    # served. Records drawn from the card's training distribution give both classes.
    card = model_card(send("GET", "/model", 200, params={"include": "reference"}).json())
    sampler = RecordSampler(card, random.Random(7))

    def send_labelled(per_replica):
        for server in servers:
            records = [sampler.record() for _ in range(per_replica)]
            answers = send("POST", "/predict/batch", 200, base=server.url,
                           json={"records": records}).json()["predictions"]
            send("POST", "/feedback", 200, base=server.url, json=labels(answers))
        send("POST", "/feedback", 404, json={"prediction_id": "0" * 36, "actual": 1})

    # rates need a series to grow between two scrapes: every replica's series first exist,
    # scraped, then grow; increase() misses what a series held when first scraped, so the
    # second labelled round alone passes the quality rules' minimum-sample guards
    guard = max(sample_guards().values())
    send_labelled(40)
    send_rounds(3)
    send_labelled(int(guard // REPLICAS) + 20)
    send_rounds(9)

    # three targets, each its own instance, each with a share of the traffic
    shares = per_instance(prometheus, "http_requests_total")
    assert len(shares) == REPLICAS and min(shares.values()) > 0, shares
    # the totals one instance would show for this traffic
    by_status = {r["metric"]["status"]: float(r["value"][1])
                 for r in prometheus.query("sum by (status) (http_requests_total)")}
    assert by_status == {status: float(count) for status, count in sent.items()}
    dashboard = load_dashboard()
    outcomes = {r["metric"]["outcome"]: float(r["value"][1])
                for r in prometheus.query(query_b(dashboard, "Total Predictions"))}
    # a batch is one request: 2 a round through nginx, 1 a labelled round on each replica
    assert outcomes == {"success": 2 * 12 + 2 * REPLICAS, "error": 12}

    # every other panel query and every recording rule aggregates the instances away (those
    # built on the card's metrics only once the service exports them)
    queries = [(title, substitute(expr, {"feature": "hour"}))
               for title, expr in expressions(dashboard)
               if expr not in per_instance_by_design(dashboard)]
    queries += [(name, name) for name in recorded_series()]
    card_exported = bool(prometheus.query(CARD_METRIC))
    if not card_exported:
        queries = [(title, expr) for title, expr in queries if not needs_card(expr)]
    results = {}

    def all_answered():
        for title, expr in queries:
            if not results.get(expr):
                results[expr] = prometheus.query(expr)
        return all(results.values())

    try:
        prometheus.wait_for(all_answered, timeout=20, what="data for every panel and rule")
    except AssertionError as error:
        raise AssertionError(f"{error}: none for {[t for t, e in queries if not results[e]]}")
    with_instance = sorted({title for title, expr in queries
                            if any("instance" in r["metric"] for r in results[expr])})
    figures(f"3 instances {sorted(shares)} shares {sorted(shares.values())}; "
            f"{len(queries)} panel queries and rules, none per instance: {not with_instance}"
            + ("" if card_exported else f"; {CARD_METRIC} not exported: queries on it left out"))
    assert with_instance == []

