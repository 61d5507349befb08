"""The chunked-body guard in front of Flask: a body without Content-Length held to the limit."""
import json

import pytest
import requests
from werkzeug.test import EnvironBuilder, run_wsgi_app

from accident_api.schemas import SEED_RECORD

LIMIT = 4096


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


    # gunicorn hands any method token on: it is labelled "other", never by its name
    response = requests.request("QWERTYUIOP", f"{server.url}/predict", timeout=10)
    assert response.status_code == 405 and response.json()["status"] == "Method Not Allowed"
    other = (("endpoint", "unmatched"), ("method", "other"), ("status", "405"))
    samples = server.wait_for_metrics(lambda s: s.get(("http_requests_total", other)) == 1)
    assert not any("QWERTYUIOP" in str(labels) for _, labels in samples)
