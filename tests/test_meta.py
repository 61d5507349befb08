"""Landing page, model card, health endpoints and the OpenAPI document."""
import re

import pytest

from model.features import FEATURES

EXPECTED_PATHS = {
    "/": {"get"}, "/model": {"get"}, "/health/live": {"get"}, "/health/ready": {"get"},
    "/predict": {"post"}, "/predict/batch": {"post"}, "/v2": {"get"},
    "/v2/health/live": {"get"}, "/v2/health/ready": {"get"}, "/v2/models/{name}": {"get"},
    "/v2/models/{name}/versions/{version}": {"get"}, "/v2/models/{name}/ready": {"get"},
    "/v2/models/{name}/versions/{version}/ready": {"get"}, "/v2/models/{name}/infer": {"post"},
    "/v2/models/{name}/versions/{version}/infer": {"post"},
}


def test_landing_page_links_to_the_docs(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert 'href="/docs"' in response.get_data(as_text=True)


def test_model_card_without_reference_bins_by_default(client):
    card = client.get("/model").get_json()
    assert card["name"] == "accident-severity-rf" and card["version"]
    assert [f["name"] for f in card["features"]] == list(FEATURES)
    assert "reference" not in card and "metrics" in card and card["backend"]


def test_model_card_with_reference_bins_on_request(client):
    card = client.get("/model?include=reference").get_json()
    assert set(card["reference"]) <= set(FEATURES) and card["reference"]


def test_model_card_refuses_unknown_include(client):
    response = client.get("/model?include=everything")
    assert response.status_code == 422 and "include" in response.get_json()["errors"]["query"]


def test_liveness(client):
    response = client.get("/health/live")
    assert response.status_code == 200 and response.get_json() == {"status": "alive"}


def test_readiness_with_a_model(client):
    body = client.get("/health/ready").get_json()
    assert body["status"] == "ready" and body["model"] == "accident-severity-rf"


def test_readiness_without_a_model_is_503_with_the_reason(make_app, tmp_path):
    client = make_app(MODEL_PATH=str(tmp_path / "nothing-here")).test_client()
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.get_json()
    assert body["code"] == 503 and body["message"].startswith("Model not loaded: ")
    assert "nothing-here" in body["message"]
    assert client.get("/health/live").status_code == 200  # the process itself is fine
    assert client.get("/model").status_code == 503


@pytest.fixture(scope="module")
def spec(app):
    return app.test_client().get("/openapi.json").get_json()


def test_openapi_document_lists_every_endpoint(spec):
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "accident-api"
    paths = {path: set(ops) - {"parameters"} for path, ops in spec["paths"].items()}
    assert paths == EXPECTED_PATHS


def test_every_operation_has_a_summary_and_documents_its_errors(spec):
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert operation.get("summary"), (method, path)
            codes = set(operation["responses"])
            assert "200" in codes and "default" in codes, (method, path, codes)
            if method == "post" and not path.startswith("/v2"):
                assert {"400", "413", "415", "422", "503"} <= codes, (path, codes)
            if path.endswith("/infer"):
                assert {"400", "404", "413", "503"} <= codes, (path, codes)


def test_request_bodies_have_examples(spec):
    for path, operations in spec["paths"].items():
        body = operations.get("post", {}).get("requestBody")
        if body:
            assert body["content"]["application/json"].get("example"), path


def test_record_schema_is_strict_and_every_own_property_has_an_example(spec):
    schemas = spec["components"]["schemas"]
    record = schemas["AccidentRecord"]
    assert sorted(record["required"]) == sorted(FEATURES)
    assert record["additionalProperties"] is False
    library_schemas = {"Error", "PaginationMetadata"}  # flask-smorest's own
    for name, schema in schemas.items():
        if name in library_schemas:
            continue
        for prop, definition in schema.get("properties", {}).items():
            assert "example" in definition or "items" in definition, (name, prop)


def test_openapi_document_validates_structurally(spec):
    """No validator package is pinned: check what a validator would (refs resolve, ops unique)."""
    schemas = spec["components"]["schemas"]
    seen = set()
    def refs(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)
    for ref in refs(spec):
        kind, name = ref.split("/")[-2:]
        assert ref.startswith("#/components/") and name in spec["components"][kind], ref
    for operations in spec["paths"].values():
        for method, operation in operations.items():
            if method != "parameters":
                assert operation["operationId"] not in seen if "operationId" in operation else True
                seen.add(operation.get("operationId"))
    assert schemas


def test_swagger_ui_is_served(client):
    response = client.get("/docs")
    assert response.status_code == 200 and "swagger" in response.get_data(as_text=True).lower()


def test_swagger_ui_assets_are_served_locally(client):
    """/docs works offline: every script and stylesheet it references is served by the app."""
    page = client.get("/docs").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page)
    assert len(assets) == 3 and all(asset.startswith("/docs/assets/") for asset in assets)
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200 and len(response.data) > 10_000, asset
    assert client.get("/docs/assets/../../setup.cfg").status_code == 404
