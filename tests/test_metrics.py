"""Metrics: app-level values in the default registry, multiprocess sums through the sidecar."""
import json
import logging
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from prometheus_client import REGISTRY

from accident_api.config import MODEL_EXTENSION
from accident_api.schemas import SEED_RECORD
from accident_api.service import reload_model
from model import card as card_module
from model.features import FEATURES
from model.reference import assign_bins
from tests.fixtures.service import TrickledRequest


def value(metric, **labels):
    return REGISTRY.get_sample_value(metric, labels) or 0.0


class Delta:
    """Sample values before/after a block: `with Delta() as d: ...; d("name", label=...)`."""

    def __enter__(self):
        self.before = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for m in REGISTRY.collect() for s in m.samples}
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, metric, **labels):
        key = (metric, tuple(sorted(labels.items())))
        return value(metric, **labels) - self.before.get(key, 0.0)


def card_reference(app):
    return app.extensions[MODEL_EXTENSION].predictor.card["reference"]


def test_http_requests_counted_with_bounded_endpoint_labels(client):
    with Delta() as delta:
        client.post("/predict", json=SEED_RECORD)
        client.get("/no/such/path/123")
        client.get("/predict")
    assert delta("http_requests_total", method="POST", endpoint="predictions.predict",
                 status="200") == 1
    assert delta("http_requests_total", method="GET", endpoint="unmatched", status="404") == 1
    assert delta("http_requests_total", method="GET", endpoint="unmatched", status="405") == 1
    assert value("flask_http_requests_in_flight") == 0


def test_prediction_metrics_for_a_batch(client):
    records = [{**SEED_RECORD, "victim_age": float(a)} for a in (1, 30, 90, 110)]
    with Delta() as delta:
        items = client.post("/predict/batch", json={"records": records}).get_json()["predictions"]
    severe = sum(item["prediction"] for item in items)
    assert delta("api_predict_total", outcome="success") == 1  # one request, 4 records
    assert delta("model_predictions_total", label="severe") == severe
    assert delta("model_predictions_total", label="not_severe") == 4 - severe
    assert delta("model_batch_size_count") == 1 and delta("model_batch_size_sum") == 4
    assert delta("model_prediction_probability_count") == 4
    assert delta("model_prediction_probability_sum") == pytest.approx(
        sum(item["probability"] for item in items))
    assert delta("inference_time_seconds_count") == 1  # one model call for the whole batch


def test_failed_prediction_requests_and_rejections(client):
    with Delta() as delta:
        client.post("/predict", json={**SEED_RECORD, "catu": 9, "hacker_field": 1})
        client.post("/predict", json={k: v for k, v in SEED_RECORD.items() if k != "lat"})
        client.post("/predict", data="{", content_type="application/json")
    assert delta("api_predict_total", outcome="error") == 3
    assert delta("api_predict_total", outcome="success") == 0
    assert delta("model_input_rejected_total", field="catu", reason="code") == 1
    assert delta("model_input_rejected_total", field="_unknown", reason="unknown_field") == 1
    assert delta("model_input_rejected_total", field="lat", reason="missing") == 1
    assert delta("inference_time_seconds_count") == 0


def test_v2_domain_rejections_are_counted(client):
    row = [SEED_RECORD[name] for name in FEATURES]
    row[FEATURES.index("vma")] = 999
    with Delta() as delta:
        client.post("/v2/models/accident-severity-rf/infer",
                    json={"inputs": [{"name": "x", "shape": [1, 28], "datatype": "FP64",
                                      "data": row}]})
    assert delta("model_input_rejected_total", field="vma", reason="range") == 1
    assert delta("api_predict_total", outcome="error") == 1


def test_imputed_values_counted_per_feature(client):
    records = [SEED_RECORD, {**SEED_RECORD, "vma": None}, {**SEED_RECORD, "vma": -1, "atm": None}]
    with Delta() as delta:
        client.post("/predict/batch", json={"records": records})
        client.post("/predict", json={**SEED_RECORD, "lat": None})
        # refused (a missing key): nothing is imputed, nothing counted
        client.post("/predict", json={k: v for k, v in {**SEED_RECORD, "atm": None}.items()
                                      if k != "hour"})
    counted = {name: delta("model_input_imputed_total", feature=name) for name in FEATURES}
    assert counted == {**dict.fromkeys(FEATURES, 0.0), "vma": 2, "atm": 1, "lat": 1}
    assert delta("model_input_rejected_total", field="hour", reason="missing") == 1


def test_v2_tensors_accept_no_unknowns(client):
    row = [SEED_RECORD[name] for name in FEATURES]
    row[FEATURES.index("vma")] = -1
    with Delta() as delta:
        response = client.post("/v2/models/accident-severity-rf/infer",
                               json={"inputs": [{"name": "x", "shape": [1, 28],
                                                 "datatype": "FP64", "data": row}]})
    assert response.status_code == 400
    assert delta("model_input_rejected_total", field="vma", reason="range") == 1
    assert delta("model_input_imputed_total", feature="vma") == 0


def test_feature_values_counted_into_reference_bins(app, client):
    reference = card_reference(app)
    ages = [1.0, 40.0, 119.0]
    records = [{**SEED_RECORD, "victim_age": age} for age in ages]
    with Delta() as delta:
        client.post("/predict/batch", json={"records": records})
    edges = reference["victim_age"]["edges"]
    expected = np.bincount(assign_bins(edges, ages), minlength=len(edges) + 1)
    for index, count in enumerate(expected):
        assert delta("model_feature_bin_total", feature="victim_age", bin=str(index)) == count
    # every feature is counted once per record
    for name in reference:
        total = sum(delta("model_feature_bin_total", feature=name, bin=str(b))
                    for b in range(len(reference[name]["edges"]) + 1))
        assert total == 3, name


def test_reference_ratios_and_model_info_exported(app):
    predictor = app.extensions[MODEL_EXTENSION].predictor
    for name, bins in card_reference(app).items():
        for index, ratio in enumerate(bins["ratios"]):
            assert value("model_feature_reference_ratio", feature=name, bin=str(index)) == ratio
    assert value("model_info", name=predictor.name, version=predictor.version,
                 trained_at=str(predictor.card["trained_at"]),
                 source=predictor.card["source"]["kind"], backend=predictor.backend) == 1


def reference_metrics(version):
    return {name: REGISTRY.get_sample_value("model_reference_metric",
                                            {"metric": name, "model_version": version})
            for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "brier", "ece")}


def test_the_cards_test_metrics_are_exported(app):
    card = app.extensions[MODEL_EXTENSION].predictor.card
    exported = reference_metrics(card["version"])
    assert exported == {name: card["metrics"][name] for name in exported}
    assert {s.labels["metric"] for m in REGISTRY.collect() if m.name == "model_reference_metric"
            for s in m.samples} == set(exported)


def test_the_reference_metrics_follow_a_model_swap(make_app, model_link, alt_model_dir,
                                                   trained_model_dir):
    app = make_app(MODEL_PATH=str(model_link.path))
    original = card_module.read_card(trained_model_dir)
    alternative = card_module.read_card(alt_model_dir)
    assert original["metrics"]["f1"] != alternative["metrics"]["f1"]
    log = logging.getLogger("test-swap")
    try:
        model_link.point_to(alt_model_dir)
        assert reload_model(app, log)
        exported = reference_metrics(alternative["version"])
        assert exported == {name: alternative["metrics"][name] for name in exported}
    finally:  # the session app's model again, for the other tests of this process
        model_link.point_to(trained_model_dir)
        assert reload_model(app, log)
    # each version keeps its own values: the labels of its predictions come later
    for card in (original, alternative):
        exported = reference_metrics(card["version"])
        assert exported == {name: card["metrics"][name] for name in exported}


def test_latency_histogram_grouped_by_url_rule_without_health(client):
    with Delta() as delta:
        client.post("/predict/", json=SEED_RECORD)
        client.get("/health/ready")
        client.get("/v2/models/whatever")
        client.get("/v2/models/accident-severity-rf/ready")
        client.get("/v2/models/accident-severity-rf/versions/1/ready")
    assert delta("flask_http_request_duration_seconds_count", method="POST", path="/predict",
                 status="200") == 1
    assert delta("flask_http_request_duration_seconds_count", method="GET",
                 path="/v2/models/<string:name>", status="404") == 1
    assert not any(s.labels.get("path", "").startswith("/health")
                   or s.labels.get("path", "").endswith("/ready")  # V2 readiness probes too
                   for m in REGISTRY.collect() for s in m.samples)


def test_an_unexpected_fault_is_one_exception_one_500_and_nothing_left_in_flight(
        make_app, monkeypatch):
    app = make_app()
    predictor = app.extensions[MODEL_EXTENSION].predictor

    def broken_model(rows):
        raise RuntimeError("model fault")

    monkeypatch.setattr(predictor, "predict", broken_model)
    with Delta() as delta:
        response = app.test_client().post("/predict", json=SEED_RECORD)
    assert response.status_code == 500 and "traceback" not in response.get_data(as_text=True)
    assert delta("flask_http_request_exceptions_total", method="POST", status="500") == 1
    assert delta("flask_http_request_duration_seconds_count", method="POST", path="/predict",
                 status="500") == 1
    assert delta("flask_http_request_total", method="POST", status="500") == 1
    assert delta("http_requests_total", method="POST", endpoint="predictions.predict",
                 status="500") == 1
    assert delta("api_predict_total", outcome="error") == 1
    assert value("flask_http_requests_in_flight") == 0


def test_every_app_of_a_process_records_its_requests(app, make_app):
    other = make_app()
    with Delta() as delta:
        app.test_client().post("/predict", json=SEED_RECORD)
        other.test_client().post("/predict", json=SEED_RECORD)
        other.test_client().get("/metrics")  # unmatched and excluded: counted, not timed
    assert delta("flask_http_request_duration_seconds_count", method="POST", path="/predict",
                 status="200") == 2
    assert delta("http_requests_total", method="POST", endpoint="predictions.predict",
                 status="200") == 2
    assert delta("http_requests_total", method="GET", endpoint="unmatched", status="404") == 1
    assert delta("flask_http_request_total", method="GET", status="404") == 0


def label_values(label: str) -> set:
    """Every value `label` takes in any sample of the default registry."""
    return {sample.labels[label] for family in REGISTRY.collect() for sample in family.samples
            if label in sample.labels}


@pytest.mark.parametrize("path, status", [("/nope", 404), ("/predict", 405),
                                          ("/health/live", 405)])
def test_an_unknown_method_is_counted_as_other(client, path, status):
    with Delta() as delta:
        response = client.open(path, method="QWERTYUIOP")
    assert response.status_code == status and response.is_json
    assert delta("http_requests_total", method="other", endpoint="unmatched",
                 status=str(status)) == 1
    # neither our counter nor prometheus-flask-exporter's metrics got a new label value
    assert "QWERTYUIOP" not in label_values("method")


def test_known_methods_keep_their_label(client):
    with Delta() as delta:
        assert client.delete("/model").status_code == 405
        assert client.options("/predict").status_code == 200
    assert delta("http_requests_total", method="DELETE", endpoint="unmatched", status="405") == 1
    assert delta("http_requests_total", method="other", endpoint="unmatched", status="405") == 0


# --- multiprocess: real gunicorn, the sidecar's scrape ---------------------------------------

def total(samples, metric, **labels):
    return sum(v for (n, lbls), v in samples.items()
               if n == metric and all(dict(lbls).get(k) == w for k, w in labels.items()))


def send_mixed_traffic(url, rounds):
    """Valid, invalid, unknown path, batch: returns the number of requests sent."""
    sent = 0
    for i in range(rounds):
        requests.post(f"{url}/predict", json={**SEED_RECORD, "hour": i % 24}, timeout=10)
        requests.post(f"{url}/predict", json={**SEED_RECORD, "catu": 8}, timeout=10)
        requests.get(f"{url}/nothing-{i}", timeout=10)
        requests.post(f"{url}/predict/batch", json={"records": [SEED_RECORD] * 3}, timeout=10)
        sent += 4
    return sent


@pytest.mark.integration
def test_sidecar_sum_equals_requests_sent_and_carries_every_metric(live_server_factory):
    server = live_server_factory()
    sent = send_mixed_traffic(server.url, 10)
    samples = server.wait_for_metrics(lambda s: total(s, "http_requests_total") == sent)
    assert total(samples, "http_requests_total", endpoint="unmatched", status="404") == 10
    assert total(samples, "api_predict_total", outcome="success") == 10 + 10  # requests
    assert total(samples, "api_predict_total", outcome="error") == 10
    assert total(samples, "model_predictions_total") == 40
    assert total(samples, "model_batch_size_count") == 20
    assert total(samples, "model_batch_size_sum") == 40
    assert total(samples, "model_prediction_probability_count") == 40
    assert total(samples, "inference_time_seconds_count") == 20
    assert total(samples, "model_input_rejected_total", field="catu", reason="code") == 10
    assert total(samples, "model_feature_bin_total", feature="vma") == 40
    assert total(samples, "model_info") == 1
    assert total(samples, "model_feature_reference_ratio", feature="vma") == pytest.approx(1)
    assert total(samples, "flask_http_request_duration_seconds_count", path="/predict") == 20
    assert total(samples, "flask_http_requests_in_flight") == 0
    # metrics are never served on the API port
    assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 404


@pytest.mark.integration
def test_buffered_counts_reach_the_sidecar_on_time_and_survive_recycled_workers(
        live_server_factory):
    # the default flush interval (200 ms); every worker exits after 5 to 7 requests
    server = live_server_factory(METRICS_FLUSH_MS="200", MAX_REQUESTS="5",
                                 MAX_REQUESTS_JITTER="2")
    pids = set(server.wait_for_workers(2))
    sent = send_mixed_traffic(server.url, 10)  # 40 requests: most workers end mid-traffic
    assert not pids & set(server.wait_for_workers(2, exclude=pids))  # all recycled
    # no more traffic: the live workers' flush threads write what they still hold
    started = time.monotonic()
    samples = server.wait_for_metrics(lambda s: total(s, "http_requests_total") == sent,
                                      timeout=5)
    waited = time.monotonic() - started
    assert waited < 2, f"counts took {waited:.1f}s to reach the sidecar"
    assert total(samples, "flask_http_request_duration_seconds_count") == sent
    assert total(samples, "model_predictions_total") == 40
    assert total(samples, "inference_time_seconds_count") == 20


@pytest.mark.integration
def test_in_flight_gauge_shows_a_request_being_served_within_a_flush_interval(live_server):
    def in_flight_within(expected, seconds=3.0):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if total(live_server.samples(), "flask_http_requests_in_flight") == expected:
                return True
            time.sleep(0.05)
        return False

    held = TrickledRequest(int(live_server.url.rsplit(":", 1)[1]),
                           json.dumps(SEED_RECORD).encode())
    try:
        assert in_flight_within(1), "a request held mid-body never showed as in flight"
    finally:
        assert held.finish() == "HTTP/1.1 200 OK"
    assert in_flight_within(0), "the finished request stayed in flight"


@pytest.mark.integration
def test_counters_survive_a_sigkilled_worker(live_server_factory):
    server = live_server_factory()
    sent = send_mixed_traffic(server.url, 8)
    before = server.wait_for_metrics(lambda s: total(s, "http_requests_total") == sent)
    victims = server.wait_for_workers(2)
    os.kill(victims[0], signal.SIGKILL)
    server.wait_for_workers(2, exclude=[victims[0]])  # child_exit has folded its files
    middle = server.samples()
    for (name, labels), v in before.items():
        if name.endswith(("_total", "_count", "_sum", "_bucket")) and \
                not name.startswith("flask_http_requests_in_flight"):
            assert middle.get((name, labels), 0) >= v, (name, labels)
    sent += send_mixed_traffic(server.url, 5)
    server.wait_for_metrics(lambda s: total(s, "http_requests_total") == sent)


def drift_counts(samples) -> dict:
    """{(feature, bin): value} of model_feature_bin_total in a `scrape`."""
    return {(dict(labels)["feature"], dict(labels)["bin"]): v
            for (name, labels), v in samples.items() if name == "model_feature_bin_total"}


def expected_drift(reference, records) -> dict:
    """Every (feature, bin) of the card with the count model.reference.assign_bins gives."""
    expected = {}
    for name, bins in reference.items():
        values = [float(record[name]) for record in records]
        counts = np.bincount(assign_bins(bins["edges"], values), minlength=len(bins["edges"]) + 1)
        expected.update({(name, str(b)): float(c) for b, c in enumerate(counts)})
    return expected


def workers_that_counted(server) -> set:
    """PIDs of the processes with a counter file in the multiprocess directory (a worker
    writes one at its first flush)."""
    return {int(path.stem.rsplit("_", 1)[1]) for path in server.metrics_dir.glob("counter_*.db")
            if not path.stem.endswith("_archive")}


def send_records(server, first_index: int, count: int = 40) -> list:
    """`count` requests (/predict, a /predict/batch in five) from 8 threads; the records sent."""
    def one(index):
        records = [{**SEED_RECORD, "victim_age": float(5 + 7 * (index % 16)),
                    "hour": index % 24, "vma": (30, 50, 80, 110)[index % 4]}]
        if index % 5 == 0:
            records += [{**records[0], "lat": 43.0 + k, "long": 1.0 + k} for k in range(4)]
            response = requests.post(f"{server.url}/predict/batch", json={"records": records},
                                     timeout=10)
        else:
            response = requests.post(f"{server.url}/predict", json=records[0], timeout=10)
        assert response.status_code == 200, response.text
        return records

    with ThreadPoolExecutor(8) as pool:
        return [record for records in pool.map(one, range(first_index, first_index + count))
                for record in records]


def serve_both_workers(server, rounds=10) -> list:
    """Requests until both workers have counted some; returns the records sent, once their
    counts reached the sidecar."""
    sent = []
    workers = server.wait_for_workers(2)
    for round_ in range(rounds):
        sent += send_records(server, 40 * round_)
        server.wait_for_metrics(lambda s: total(s, "model_predictions_total") == len(sent))
        if workers_that_counted(server) >= set(workers):
            return sent
    raise AssertionError(f"one worker served everything: {workers_that_counted(server)}")


@pytest.mark.integration
def test_sidecar_drift_counts_equal_records_times_bins_across_both_workers(
        live_server_factory, trained_model_dir):
    server = live_server_factory()
    reference = json.loads((trained_model_dir / "model_card.json").read_text())["reference"]
    sent = serve_both_workers(server)
    expected = expected_drift(reference, sent)
    counted = drift_counts(server.wait_for_metrics(lambda s: drift_counts(s) == expected))
    assert sum(counted.values()) == len(sent) * len(reference)  # every bin, zeros included


@pytest.mark.integration
def test_drift_counts_survive_a_sigkilled_worker_and_recycled_workers(
        live_server_factory, trained_model_dir):
    server = live_server_factory(MAX_REQUESTS="60", MAX_REQUESTS_JITTER="10")
    reference = json.loads((trained_model_dir / "model_card.json").read_text())["reference"]
    sent = serve_both_workers(server)
    server.wait_for_metrics(lambda s: drift_counts(s) == expected_drift(reference, sent))
    victim = server.wait_for_workers(2)[0]
    os.kill(victim, signal.SIGKILL)  # its updates are written: nothing is lost
    server.wait_for_workers(2, exclude=[victim])
    assert drift_counts(server.samples()) == expected_drift(reference, sent)
    first = set(server.wait_for_workers(2))
    for round_ in range(100, 110):  # until every worker was recycled at least once
        if not first & set(server.worker_pids()):
            break
        sent += send_records(server, 40 * round_)
    assert not first & set(server.worker_pids()), "the workers were never recycled"
    server.wait_for_metrics(lambda s: drift_counts(s) == expected_drift(reference, sent))


@pytest.mark.integration
def test_multiprocess_dir_is_wiped_at_start(live_server_factory, tmp_path):
    stale = tmp_path / "stale-metrics"
    stale.mkdir()
    code = ("from monitoring import metrics; "
            "metrics.init_metrics(inference_buckets=[1], probability_buckets=[1], "
            "batch_size_buckets=[1]); "
            "metrics.HTTP_REQUESTS.labels(method='GET', endpoint='x', status='200').inc(500); "
            "metrics.FEATURE_BIN.labels(feature='stale_feature', bin='0').inc(500)")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(stale), "PYTHONPATH": os.getcwd()}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    assert list(stale.glob("*.db"))
    (stale / "notes.txt").write_text("not ours: kept")
    server = live_server_factory(PROMETHEUS_MULTIPROC_DIR=str(stale))
    samples = server.samples()
    assert total(samples, "http_requests_total") == 0
    assert total(samples, "model_feature_bin_total") == 0
    assert total(samples, "model_feature_bin_total", feature="stale_feature") == 0
    assert (stale / "notes.txt").read_text() == "not ours: kept"


# --- configuration flows from the app factory; monitoring/ stands alone ----------------------

def test_monitoring_imports_neither_the_web_layer_nor_flask():
    code = ("import sys, monitoring.metrics, monitoring.drift, monitoring.exporter, "
            "monitoring.compaction, monitoring.recorder; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('accident_api', 'flask')); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60,
                   env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_metrics_exist_only_after_init_metrics():
    code = ("from monitoring import metrics\n"
            "try:\n    metrics.HTTP_REQUESTS\nexcept metrics.MetricsNotInitialised as e:\n"
            "    assert 'init_metrics' in str(e)\nelse:\n    raise SystemExit('no error')\n"
            "metrics.init_metrics(inference_buckets=(0.1, 1), probability_buckets=(0.5, 1), "
            "batch_size_buckets=(1, 10))\n"
            "from monitoring.prometheus_compat import bucket_bounds\n"
            "assert bucket_bounds(metrics.INFERENCE_TIME) == [0.1, 1.0, float('inf')]\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60,
                   env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_metric_buckets_come_from_the_app_config_once_per_process(app, make_app):
    from monitoring import metrics
    from monitoring.prometheus_compat import bucket_bounds

    expected = tuple(float(b) for b in app.config["INFERENCE_BUCKETS"])
    assert tuple(bucket_bounds(metrics.INFERENCE_TIME)[:-1]) == expected
    make_app()  # same buckets: another app in the same process shares the metrics
    with pytest.raises(metrics.MetricsConfigError, match="buckets"):
        make_app(INFERENCE_BUCKETS=(0.5, 1.0))


def test_latency_buckets_come_from_the_app_config(app, make_app):
    from accident_api.config import ConfigError

    app.test_client().post("/predict", json=SEED_RECORD)  # a latency sample to read
    samples = {s.labels.get("le") for m in REGISTRY.collect() for s in m.samples
               if s.name == "flask_http_request_duration_seconds_bucket"}
    assert {str(float(b)) for b in app.config["HTTP_DURATION_BUCKETS"]} <= samples
    with pytest.raises(ConfigError, match="HTTP_DURATION_BUCKETS"):
        make_app(HTTP_DURATION_BUCKETS=(0.5, 1.0))
