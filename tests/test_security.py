"""Security: optional API keys, nothing secret exposed, no debug, headers, verified artifacts."""
import hashlib
import os
import pickle
import re
import shutil
from urllib.parse import urlsplit

import pytest
import requests

from accident_api import security
from accident_api.config import Config, ConfigError
from accident_api.schemas import SEED_RECORD
from model.errors import ModelIntegrityError
from model.serving import load_model

KEY = "k3y-" + "a1b2c3d4" * 4
OTHER_KEY = "k3y-" + "ffffeeee" * 4
PREDICTION_CALLS = [
    ("/predict", SEED_RECORD),
    ("/predict/batch", {"records": [SEED_RECORD]}),
    ("/v2/models/accident-severity-rf/infer",
     {"inputs": [{"name": "input", "shape": [1, 28], "datatype": "FP64",
                  "data": [float(v) for v in SEED_RECORD.values()]}]}),
]


@pytest.fixture
def keyed_client(make_app):
    return make_app(API_KEYS=(KEY, OTHER_KEY)).test_client()


@pytest.mark.parametrize("path, body", PREDICTION_CALLS)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key-000000000000"},
                                     {"X-API-Key": KEY[:-1]}, {"Authorization": KEY}])
def test_prediction_without_a_valid_key_is_401_json(keyed_client, path, body, headers):
    response = keyed_client.post(path, json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="accident-api"'
    message = response.json.get("message") or response.json.get("error")
    assert "API key" in message and KEY not in response.get_data(as_text=True)
    if path.startswith("/v2/"):
        assert set(response.json) == {"error"}          # the protocol's error object
    else:
        assert response.json["code"] == 401 and response.json["status"] == "Unauthorized"


@pytest.mark.parametrize("path, body", PREDICTION_CALLS)
@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {KEY}"},
                                     {"authorization": f"bearer {OTHER_KEY}"},
                                     {"X-API-Key": KEY}])
def test_prediction_with_a_valid_key_is_served(keyed_client, path, body, headers):
    assert keyed_client.post(path, json=body, headers=headers).status_code == 200


def test_keys_are_off_by_default_and_other_endpoints_stay_open(client, keyed_client):
    assert Config().API_KEYS == () and Config().API_KEYS_FILE is None
    assert client.post("/predict", json=SEED_RECORD).status_code == 200
    for path in ("/", "/docs", "/openapi.json", "/model", "/health/live", "/health/ready", "/v2"):
        assert keyed_client.get(path).status_code == 200, path


def test_keys_from_a_file_and_from_the_environment(make_app, tmp_path):
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# rotated 2026-11\n{KEY}\n\n")
    config = Config.from_env({"API_KEYS": f" {OTHER_KEY} ,", "API_KEYS_FILE": str(keys_file)})
    assert config.API_KEYS == (OTHER_KEY,) and KEY not in repr(config)
    client = make_app(API_KEYS=config.API_KEYS, API_KEYS_FILE=config.API_KEYS_FILE).test_client()
    for key in (KEY, OTHER_KEY):
        response = client.post("/predict", json=SEED_RECORD, headers={"X-API-Key": key})
        assert response.status_code == 200


def test_unusable_key_settings_are_refused(make_app, tmp_path):
    with pytest.raises(ConfigError, match="API_KEYS_FILE"):
        Config.from_env({"API_KEYS_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="shorter than 16"):
        make_app(API_KEYS=("short",))


def test_openapi_documents_keys_only_when_they_are_on(keyed_client, make_app):
    spec = keyed_client.get("/openapi.json").json
    assert set(spec["components"]["securitySchemes"]) == {"bearerAuth", "apiKeyHeader"}
    for path in ("/predict", "/predict/batch", "/v2/models/{name}/infer"):
        operation = spec["paths"][path]["post"]
        assert operation["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}]
        assert "401" in operation["responses"]
    plain = make_app().test_client().get("/openapi.json").json
    assert "securitySchemes" not in plain["components"]
    assert "401" not in plain["paths"]["/predict"]["post"]["responses"]


def test_debug_mode_stays_off_even_with_flask_debug(make_app, monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = make_app()
    assert app.debug is False
    assert "Traceback" not in app.test_client().post("/predict", data="{").get_data(as_text=True)


def _csp_sources(policy: str) -> dict:
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def test_swagger_ui_page_has_security_headers_its_assets_are_allowed(client):
    import base64
    import hashlib

    response = client.get("/docs")
    html = response.get_data()
    assert response.status_code == 200
    csp = _csp_sources(response.headers["Content-Security-Policy"])
    assets = re.findall(rb'<(script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert {kind for kind, _ in assets} == {b"script", b"link"}
    for kind, url in assets:
        parts = urlsplit(url.decode())
        origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else "'self'"
        directive = "script-src" if kind == b"script" else "style-src"
        assert origin in csp[directive], (url, csp[directive])
        if origin == "'self'":                             # and the file is really there
            assert client.get(url.decode()).status_code == 200, url
    inline = re.findall(rb"<script>(.*?)</script>", html, re.S)
    assert inline, "Swagger UI boots from an inline script"
    for body in inline:
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        assert f"'sha256-{digest}'" in csp["script-src"]
    assert "'unsafe-inline'" not in csp["script-src"] and csp["default-src"] == ["'none'"]
    assert csp["connect-src"] == ["'self'"]                 # /openapi.json and "Try it out"
    assert csp["frame-ancestors"] == ["'none'"]
    assert b'url: "/openapi.json"' in html                 # the page still finds its spec
    for name, value in (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
                        ("Referrer-Policy", "no-referrer")):
        assert response.headers[name] == value


def test_landing_page_headers_and_links(client):
    response = client.get("/")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert b'href="/docs"' in response.get_data()
    json_response = client.get("/health/live")
    assert json_response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in json_response.headers


class _Exploit:
    """A pickle that runs code when loaded: what a swapped model file could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (shutil.copyfile, (os.devnull, self.marker))


def test_a_code_executing_pickle_is_never_unpickled(trained_model_dir, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(trained_model_dir, model_dir)
    marker = tmp_path / "pwned"
    (model_dir / "model.joblib").write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        load_model(model_dir, backend="sklearn")
    assert not marker.exists(), "the pickle ran: the hash must be checked before loading"


@pytest.mark.integration
def test_keys_never_logged_or_exposed_over_http(live_server_factory, tmp_path, figures):
    keys_file = tmp_path / "api-keys"
    keys_file.write_text(KEY + "\n")
    server = live_server_factory(API_KEYS_FILE=keys_file, API_KEYS=OTHER_KEY)
    url = server.url + "/predict"
    statuses = [
        requests.post(url, json=SEED_RECORD, timeout=10).status_code,
        requests.post(url, json=SEED_RECORD, headers={"X-API-Key": "x" * 20},
                      timeout=10).status_code,
        requests.post(url, json=SEED_RECORD, headers={"Authorization": f"Bearer {KEY}"},
                      timeout=10).status_code,
        requests.post(url, json=SEED_RECORD, headers={"X-API-Key": OTHER_KEY},
                      timeout=10).status_code,
    ]
    exposed = {path: requests.get(server.url + path, timeout=10).text
               for path in ("/", "/model", "/health/live", "/health/ready", "/openapi.json",
                            "/v2", "/v2/models/accident-severity-rf")}
    exposed["sidecar /metrics"] = server.scrape()
    api_metrics = requests.get(server.url + "/metrics", timeout=10).status_code
    logs = server.logs()
    figures(f"statuses {statuses}; /metrics on the API port -> {api_metrics}; checked "
            f"{len(exposed)} documents and {len(logs)} bytes of logs for the keys")
    assert statuses == [401, 401, 200, 200]
    assert api_metrics == 404, "metrics are served on the sidecar port only"
    for where, text in {**exposed, "logs": logs}.items():
        for secret in (KEY, OTHER_KEY, str(keys_file)):
            assert secret not in text, f"{secret[:6]}... leaked in {where}"


def test_indented_comment_in_the_key_file_is_not_a_key(tmp_path):
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"  # an indented comment, long enough to pass as a key\n{KEY}\n")
    digest = hashlib.sha256(KEY.encode()).digest()
    assert security.load_keys(keys_file=str(keys_file)) == (digest,)


def test_keys_are_compared_as_equal_length_digests(monkeypatch):
    """compare_digest returns at once on unequal lengths: comparing raw keys would let the
    response time tell a key's length. Every comparison is between two SHA-256 digests."""
    compared = []
    real = security.hmac.compare_digest

    def spy(a, b):
        compared.append((len(a), len(b)))
        return real(a, b)
    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    digests = security.load_keys((KEY, OTHER_KEY))
    assert security.key_is_valid(OTHER_KEY.encode(), digests)
    assert not security.key_is_valid(b"short", digests)
    assert compared == [(32, 32)] * 4
    assert KEY.encode() not in digests


def test_security_headers_keep_a_value_the_view_set_and_are_never_doubled(app):
    from accident_api.security import security_headers

    with app.app_context():
        response = app.response_class(b"{}", mimetype="application/json")
        response.headers["x-frame-options"] = "SAMEORIGIN"  # any case: header names are not
        security_headers(response)
    assert response.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert response.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    assert response.headers.getlist("Referrer-Policy") == ["no-referrer"]
