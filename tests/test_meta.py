"""Landing page, model card, health endpoints and the OpenAPI document."""
import copy
import re

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from model.features import FEATURES

EXPECTED_PATHS = {
    "/": {"get"}, "/model": {"get"}, "/health/live": {"get"}, "/health/ready": {"get"},
    "/predict": {"post"}, "/predict/batch": {"post"}, "/feedback": {"post"}, "/v2": {"get"},
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


def test_openapi_documents_the_unknowns(spec):
    schemas = spec["components"]["schemas"]
    record = schemas["AccidentRecord"]
    assert sorted(record["required"]) == sorted(FEATURES)  # a missing key stays an error
    for name, prop in record["properties"].items():
        assert prop["nullable"] is True and "Unknown: send null" in prop["description"], name
        assert "enum" not in prop or prop["enum"][-1] is None, name
    assert "Unknown: send null or -1;" in record["properties"]["vma"]["description"]
    imputed = schemas["Prediction"]["properties"]["imputed"]
    assert imputed["type"] == "array" and imputed["items"]["enum"] == list(FEATURES)
    assert imputed["example"] == ["vma"] and "imputed" in imputed["description"]


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
                assert "422" not in codes, path  # V2 answers validation errors with 400


# Errors each operation must document (404/405 are every operation's "default").
DOCUMENTED_ERRORS = {
    ("get", "/model"): {"422", "503"}, ("get", "/health/ready"): {"503"},
    ("get", "/v2/models/{name}"): {"404", "503"},
    ("get", "/v2/models/{name}/versions/{version}"): {"404", "503"},
    ("get", "/v2/models/{name}/ready"): {"404"},
    ("get", "/v2/models/{name}/versions/{version}/ready"): {"404"},
}
# V2 readiness: "not ready" is a status without a body, as the protocol asks
EMPTY_BODIED = {("get", "/v2/health/ready", "400"), ("get", "/v2/models/{name}/ready", "400"),
                ("get", "/v2/models/{name}/versions/{version}/ready", "400")}


def test_every_error_response_has_its_schema_and_an_example(spec):
    responses_components = spec["components"]["responses"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            codes = set(operation["responses"])
            assert DOCUMENTED_ERRORS.get((method, path), set()) <= codes, (method, path, codes)
            wanted = "V2Error" if path.startswith("/v2") else "Error"
            for status, response in operation["responses"].items():
                if status.startswith("2") or (method, path, status) in EMPTY_BODIED:
                    continue
                if "$ref" in response:  # flask-smorest's DEFAULT_ERROR (no example: generic)
                    assert wanted == "Error" and status == "default", (method, path, status)
                    response = responses_components[response["$ref"].rsplit("/", 1)[1]]
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"}
                    continue
                content = response["content"]["application/json"]
                assert content["schema"] == {"$ref": f"#/components/schemas/{wanted}"}, \
                    (method, path, status)
                example = content["example"]
                if wanted == "V2Error":
                    assert list(example) == ["error"], (method, path, status)
                else:
                    assert example["code"] == int(status) and example["message"], \
                        (method, path, status)


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


def test_openapi_document_is_valid_openapi_3(spec):
    validate(spec)  # openapi-spec-validator: raises on any violation of the OpenAPI 3.0 schema


def test_openapi_validator_rejects_an_invalid_document(spec):
    """The check above can fail: a response without its required description is refused."""
    broken = copy.deepcopy(spec)
    del broken["paths"]["/predict"]["post"]["responses"]["200"]["description"]
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_every_served_route_is_documented(app, spec):
    """Each Flask rule of the API (not the docs' own pages) is a path of the document."""
    documented = {re.sub(r"{(\w+)}", r"<string:\1>", path) for path in spec["paths"]}
    served = {rule.rule for rule in app.url_map.iter_rules()
              if not rule.rule.startswith(("/docs", "/openapi.json", "/static"))}
    assert served == documented
    # /predict/ is the same rule (strict_slashes=False), documented on POST /predict
    assert app.test_client().post("/predict/", json={}).status_code == 422
    assert "`/predict/`" in spec["paths"]["/predict"]["post"]["description"]


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
