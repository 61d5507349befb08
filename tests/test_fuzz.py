"""Schema-driven fuzzing (schemathesis + hypothesis) of the live server: never a 5xx.

Each operation of /openapi.json gets valid (positive) and invalid (negative) generated
requests. schemathesis' lazy pytest loader does not run under this pytest, so the strategies
are driven by hypothesis directly, one parametrized test per operation.
"""
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode


MAX_EXAMPLES = 40  # per case (15 valid + 6 invalid cases): bounded for CI
OPERATIONS = [
    ("GET", "/"), ("GET", "/model"), ("GET", "/health/live"), ("GET", "/health/ready"),
    ("POST", "/predict"), ("POST", "/predict/batch"), ("GET", "/v2"), ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"), ("GET", "/v2/models/{name}"),
    ("GET", "/v2/models/{name}/versions/{version}"), ("GET", "/v2/models/{name}/ready"),
    ("GET", "/v2/models/{name}/versions/{version}/ready"), ("POST", "/v2/models/{name}/infer"),
    ("POST", "/v2/models/{name}/versions/{version}/infer"),
]


@pytest.fixture(scope="module")
def api_schema(live_server):
    return schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")


@pytest.mark.integration
def test_fuzz_covers_every_operation(api_schema):
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


# Invalid input can only be generated where the client sends something: bodies, query strings.
CASES = [(m, p, GenerationMode.POSITIVE) for m, p in OPERATIONS] + [
    (m, p, GenerationMode.NEGATIVE) for m, p in OPERATIONS if m == "POST" or p == "/model"]


@pytest.mark.integration
@pytest.mark.parametrize("method, path, mode", CASES,
                         ids=[f"{m} {p} {mode.value}" for m, p, mode in CASES])
def test_no_server_error(api_schema, live_server, method, path, mode):
    operation = api_schema[path][method]
    session = requests.Session()

    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        response = case.call(base_url=live_server.url, session=session, timeout=10)
        assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
        assert "Traceback" not in response.text

    check()
