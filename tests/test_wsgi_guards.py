"""WSGI guards in front of Flask: unknown HTTP methods."""
import pytest
import requests
from prometheus_client import REGISTRY

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


@pytest.mark.integration
def test_over_gunicorn(live_server_factory):
    server = live_server_factory(MAX_CONTENT_LENGTH=LIMIT)
    response = requests.request("QWERTYUIOP", f"{server.url}/nope", timeout=10)
    assert response.status_code == 405 and response.json()["message"] == METHOD_MESSAGE
    scraped = server.scrape()
    assert "QWERTYUIOP" not in scraped
    assert ('http_requests_total{endpoint="unmatched",method="other",status="405"} 1.0'
            in scraped)
