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
    ("POST", "/predict"), ("POST", "/predict/batch"), ("POST", "/feedback"), ("GET", "/v2"),
    ("GET", "/v2/health/live"),
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


# Inputs schema-driven generation does not reach: documents json.loads itself chokes on
# (RecursionError, the 4300-digit int limit) and integers float() cannot convert.
_SEED_JSON = ('{"place":10,"catu":3,"sexe":1,"secu1":0.0,"year_acc":2021,"victim_age":60,'
              '"catv":2,"obsm":1,"motor":1,"catr":3,"circ":2,"surf":1,"situ":1,"vma":50,'
              '"jour":7,"mois":12,"lum":5,"dep":77,"com":77317,"agg_":2,"int_":1,"atm":0,'
              '"col":6,"lat":48.60,"long":2.89,"hour":17,"nb_victim":2,"nb_vehicules":1}')
_HUGE = "1" + "0" * 400  # > 1.8e308: float() raises OverflowError
_V2_ROW = "[10,3,1,0,2021,60,2,1,1,3,2,1,1,50,7,12,5,77,77317,2,1,0,6,48.6,2.89,17,2,1]"
UNDECODABLE = {
    "nested_lists": "[" * 100_000 + "]" * 100_000,
    "nested_objects": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "integer_over_4300_digits": '{"lat": ' + "7" * 5000 + "}",
}
POST_PATHS = ["/predict", "/predict/batch", "/v2/models/accident-severity-rf/infer"]


@pytest.mark.integration
@pytest.mark.parametrize("path", POST_PATHS)
@pytest.mark.parametrize("body", UNDECODABLE.values(), ids=UNDECODABLE.keys())
def test_undecodable_json_is_400(live_server, path, body):
    response = requests.post(live_server.url + path, data=body, timeout=30,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text[:300]
    assert "Invalid JSON body." in response.text


@pytest.mark.integration
@pytest.mark.parametrize("path, body, status, fragment", [
    ("/predict", _SEED_JSON.replace('"lat":48.60', f'"lat":{_HUGE}'), 422,
     '"lat":["Number too large'),
    ("/predict/batch",
     '{"records": [' + _SEED_JSON.replace('"long":2.89', f'"long":-{_HUGE}') + "]}", 422,
     '"long":["Number too large'),
    (POST_PATHS[2], '{"inputs": [{"name": "input-0", "shape": [1, 28], "datatype": "FP64", '
                    '"data": ' + _V2_ROW.replace("48.6", _HUGE) + "}]}", 400, "too large"),
], ids=["predict", "batch", "v2"])
def test_numbers_too_large_for_a_float_are_client_errors(live_server, path, body, status,
                                                          fragment):
    response = requests.post(live_server.url + path, data=body, timeout=30,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == status and fragment in response.text, response.text[:300]
