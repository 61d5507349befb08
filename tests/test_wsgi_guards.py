"""WSGI guards in front of Flask: unknown HTTP methods and chunked bodies over the size limit."""
import json

import pytest
import requests
from prometheus_client import REGISTRY
from werkzeug.test import EnvironBuilder, run_wsgi_app

from accident_api.schemas import SEED_RECORD

from tests.test_metrics import Delta

LIMIT = 4096
METHOD_MESSAGE = ("HTTP method not supported by this server: use GET, HEAD, POST, PUT, PATCH, "
                  "DELETE or OPTIONS.")


def label_values(label: str) -> set:
    """Every value `label` takes in any sample of the default registry."""
    return {sample.labels[label] for family in REGISTRY.collect() for sample in family.samples
            if label in sample.labels}


@pytest.mark.parametrize("path", ["/nope", "/predict", "/health/live"])
def test_unknown_method_is_a_json_405_counted_as_other(client, path):
    with Delta() as delta:
        response = client.open(path, method="QWERTYUIOP")
    assert response.status_code == 405
    assert response.get_json() == {"code": 405, "status": "Method Not Allowed",
                                   "message": METHOD_MESSAGE}
    assert delta("http_requests_total", method="other", endpoint="unmatched", status="405") == 1
    # neither our counter nor prometheus-flask-exporter's metrics got a new label value
    assert "QWERTYUIOP" not in label_values("method")


def test_unknown_method_lists_the_allowed_ones_for_a_known_path(client):
    assert client.open("/predict", method="BREW").headers["Allow"] == "OPTIONS, POST"


def test_unknown_method_under_v2_uses_the_protocol_error(client):
    response = client.open("/v2/models/accident-severity-rf/infer", method="TRACE")
    assert response.status_code == 405 and response.get_json() == {"error": METHOD_MESSAGE}


def test_known_methods_still_reach_flask(client):
    with Delta() as delta:
        assert client.delete("/model").status_code == 405  # Flask's own 405, method labelled
        assert client.options("/predict").status_code == 200
    assert delta("http_requests_total", method="DELETE", endpoint="unmatched", status="405") == 1
    assert delta("http_requests_total", method="other", endpoint="unmatched", status="405") == 0


def chunked(app, body: str):
    """Run `app` on a POST /predict/batch sent like gunicorn hands on a chunked request."""
    environ = EnvironBuilder(path="/predict/batch", method="POST", data=body,
                             content_type="application/json").get_environ()
    del environ["CONTENT_LENGTH"]
    environ.update({"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True})
    chunks, status, _ = run_wsgi_app(app, environ, buffered=True)
    return int(status.split()[0]), json.loads(b"".join(chunks))


@pytest.fixture
def small_app(make_app):
    return make_app(MAX_CONTENT_LENGTH=LIMIT)


def test_chunked_body_over_the_limit_is_413_naming_it(small_app):
    body = json.dumps({"records": [SEED_RECORD] * 20})
    assert len(body) > LIMIT
    status, payload = chunked(small_app, body)
    assert status == 413
    assert payload == {"code": 413, "status": "Request Entity Too Large",
                       "message": f"Request body over MAX_CONTENT_LENGTH={LIMIT} bytes; send a "
                                  f"smaller body."}


def test_chunked_body_under_the_limit_is_served_whole(small_app):
    status, payload = chunked(small_app, json.dumps({"records": [SEED_RECORD] * 2}))
    assert status == 200 and len(payload["predictions"]) == 2


def test_declared_body_over_the_limit_names_the_limit(small_app):
    response = small_app.test_client().post("/predict/batch",
                                            json={"records": [SEED_RECORD] * 20})
    assert response.status_code == 413 and f"MAX_CONTENT_LENGTH={LIMIT}" in response.get_json()[
        "message"]


@pytest.mark.integration
def test_over_gunicorn(live_server_factory):
    server = live_server_factory(MAX_CONTENT_LENGTH=LIMIT)
    body = json.dumps({"records": [SEED_RECORD] * 20}).encode()
    pieces = (body[i:i + 1000] for i in range(0, len(body), 1000))  # a generator: chunked
    response = requests.post(f"{server.url}/predict/batch", data=pieces, timeout=10,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert f"MAX_CONTENT_LENGTH={LIMIT}" in response.json()["message"]
    small = json.dumps({"records": [SEED_RECORD]}).encode()
    response = requests.post(f"{server.url}/predict/batch", data=iter([small[:50], small[50:]]),
                             headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 200, response.text

    response = requests.request("QWERTYUIOP", f"{server.url}/nope", timeout=10)
    assert response.status_code == 405 and response.json()["message"] == METHOD_MESSAGE
    scraped = server.scrape()
    assert "QWERTYUIOP" not in scraped
    assert ('http_requests_total{endpoint="unmatched",method="other",status="405"} 1.0'
            in scraped)
