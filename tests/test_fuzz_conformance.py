"""Schema conformance fuzzing: ~2,300 generated requests, no 5xx, every response as documented.

tests/test_fuzz.py (service area) fuzzes the live gunicorn for 5xx. This file goes further
on the in-process WSGI app (fast enough for a few thousand cases in CI): each response must
also have a documented status code, a documented content type and a body that validates
against the documented schema (schemathesis' conformance checks). V2 operations are fuzzed
twice: with generated path parameters (mostly 404) and with the served model's name and
version pinned, so generated bodies reach the inference code.
"""
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (content_type_conformance, not_a_server_error,
                                 response_schema_conformance, status_code_conformance)

pytestmark = pytest.mark.slow  # ~60 s of generated requests

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# (method, path, modes, examples per mode, pin V2 path parameters to the served model)
PLAN = [
    ("GET", "/", (POSITIVE,), 1, False),
    ("GET", "/health/live", (POSITIVE,), 1, False),
    ("GET", "/health/ready", (POSITIVE,), 1, False),
    ("GET", "/v2", (POSITIVE,), 1, False),
    ("GET", "/v2/health/live", (POSITIVE,), 1, False),
    ("GET", "/v2/health/ready", (POSITIVE,), 1, False),
    ("GET", "/model", (POSITIVE, NEGATIVE), 100, False),
    ("POST", "/predict", (POSITIVE, NEGATIVE), 200, False),
    ("POST", "/predict/batch", (POSITIVE, NEGATIVE), 120, False),
    ("POST", "/feedback", (POSITIVE, NEGATIVE), 120, False),
] + [
    ("GET", path, (POSITIVE,), 60, pin)
    for path in ("/v2/models/{name}", "/v2/models/{name}/ready",
                 "/v2/models/{name}/versions/{version}",
                 "/v2/models/{name}/versions/{version}/ready")
    for pin in (False, True)
] + [
    ("POST", path, (POSITIVE, NEGATIVE), 120, pin)
    for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")
    for pin in (False, True)
]
CASES = [(m, p, mode, n, pin) for m, p, modes, n, pin in PLAN for mode in modes]


@pytest.fixture(scope="module")
def wsgi_schema(app):
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def test_the_plan_covers_every_documented_operation(wsgi_schema):
    documented = {(op.ok().method.upper(), op.ok().path) for op in wsgi_schema.get_all_operations()}
    assert documented == {(m, p) for m, p, *_ in PLAN}
    assert sum(n for *_, n, _ in CASES) >= 2000


@pytest.mark.parametrize("method, path, mode, examples, pin", CASES,
                         ids=[f"{m} {p} {mode.value}{' pinned' if pin else ''}"
                              for m, p, mode, _, pin in CASES])
def test_responses_conform_to_the_documented_schema(wsgi_schema, app, method, path, mode,
                                                    examples, pin, figures):
    predictor = app.extensions["accident_api.model"].predictor
    operation = wsgi_schema[path][method]
    statuses, failures = Counter(), []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        if pin and case.path_parameters:
            case.path_parameters.update(
                {k: v for k, v in (("name", predictor.name), ("version", predictor.version))
                 if k in case.path_parameters})
        response = case.call()
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as failure:  # schemathesis raises a group of check failures
            failures.append(f"{response.status_code}: {failure}"[:400])

    check()
    figures(f"{method} {path} {mode.value}{' pinned' if pin else ''}: "
            f"{sum(statuses.values())} cases, statuses {dict(sorted(statuses.items()))}, "
            f"non-conforming {len(failures)}")
    assert not failures, failures[:3]
    assert not any(status >= 500 for status in statuses)
    assert sum(statuses.values()) >= min(examples, 1)
