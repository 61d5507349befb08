"""OpenAPI adjustments flask-smorest's decorators cannot express, through apispec's plugin API.

- Under /v2 every error is the protocol's `{"error": ...}` and validation failures are 400,
  so the generic default response and flask-smorest's 422 give way to the V2 error object.
- With API keys configured, each prediction and feedback operation lists the two security schemes
  (Swagger UI's Authorize button) and its 401 answer.
"""
from apispec import BasePlugin

from accident_api.blueprints import PROTECTED_ENDPOINTS
from accident_api.errors import is_v2_path

V2_DEFAULT = {
    "description": "Any other error (unknown path, wrong method): the protocol's error object.",
    "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/V2Error"},
        "example": {"error": "The method is not allowed for the requested URL."}}},
}
SECURITY_SCHEMES = {"bearerAuth": {"type": "http", "scheme": "bearer"},
                    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}


class ServiceDocs(BasePlugin):
    """Adjusts each operation as it is added to the spec (`operation_helper`)."""

    def __init__(self, api_keys: bool):
        super().__init__()
        self.api_keys = api_keys

    def init_spec(self, spec):
        super().init_spec(spec)
        if self.api_keys:
            for name, scheme in SECURITY_SCHEMES.items():
                spec.components.security_scheme(name, scheme)

    def operation_helper(self, path=None, operations=None, **kwargs):
        rule = kwargs.get("rule")
        protected = rule is not None and rule.endpoint in PROTECTED_ENDPOINTS
        for method, operation in (operations or {}).items():
            responses = operation.setdefault("responses", {})
            if is_v2_path(path):
                responses.pop(422, None)
                responses["default"] = V2_DEFAULT
            if self.api_keys and protected and method == "post":
                schema = "V2Error" if is_v2_path(path) else "Error"
                operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
                responses[401] = {
                    "description": "Missing or invalid API key (`WWW-Authenticate: Bearer`).",
                    "content": {"application/json": {"schema": {
                        "$ref": f"#/components/schemas/{schema}"}}}}
