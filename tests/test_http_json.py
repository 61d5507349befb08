"""accident_api.http_json: orjson speed, Flask's JSON contract (what clients read) kept."""
import datetime
import json
import math
import uuid

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from accident_api.http_json import OrjsonProvider


@pytest.fixture
def flask_app():
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    return app


DOCUMENTS = [
    {"prediction": 1, "probability": 0.689702570438385, "label": "severe", "model_version": "x"},
    {"b": [1, 2.5, None, True], "a": {"z": "é ü ☃", "y": -0.0}},
    {"when": datetime.datetime(2026, 11, 26, 8, 30, tzinfo=datetime.timezone.utc),
     "day": datetime.date(2021, 7, 14), "id": uuid.UUID(int=7)},
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_responses_read_back_as_flasks_own(flask_app, document):
    standard = DefaultJSONProvider(flask_app)
    with flask_app.app_context():
        ours, theirs = flask_app.json.response(document), standard.response(document)
    assert ours.mimetype == theirs.mimetype == "application/json"
    body = ours.get_data()
    assert body.endswith(b"}\n")
    assert json.loads(body) == json.loads(theirs.get_data())
    # keys sorted at every level, like Flask's default (caches and diffs rely on it)
    assert list(json.loads(body)) == sorted(document)


def test_text_is_utf8_and_compact(flask_app):
    with flask_app.app_context():
        body = flask_app.json.response({"b": "é", "a": [1, 2]}).get_data()
    assert body == '{"a":[1,2],"b":"é"}\n'.encode()


def test_nan_is_written_as_null_not_the_bare_nan_json_forbids(flask_app):
    assert flask_app.json.dumps({"p": math.nan, "q": math.inf}) == '{"p":null,"q":null}'


def test_what_orjson_cannot_encode_goes_to_the_standard_library(flask_app):
    assert flask_app.json.dumps({"n": 10 ** 30}) == '{"n": 1000000000000000000000000000000}'
    with pytest.raises(TypeError):  # not serialisable at all: the same error as Flask's
        flask_app.json.dumps({"s": {1, 2}})
    with flask_app.app_context():
        assert json.loads(flask_app.json.response({"n": 10 ** 30}).get_data()) == {"n": 10 ** 30}


def test_keyword_arguments_are_the_standard_librarys(flask_app):
    assert flask_app.json.dumps({"b": 1, "a": 2}, indent=1) == '{\n "a": 2,\n "b": 1\n}'


def test_debug_responses_stay_indented(flask_app):
    flask_app.debug = True
    with flask_app.app_context():
        assert flask_app.json.response({"a": 1}).get_data() == b'{\n  "a": 1\n}\n'


@pytest.mark.parametrize("text, expected", [
    (b'{"a": [1, 2.5, null, true, "\\u00e9"]}', {"a": [1, 2.5, None, True, "é"]}),
    (b'{"a": 1, "a": 2}', {"a": 2}),  # last duplicate wins, as in json.loads
    (b"[9223372036854775807]", [2 ** 63 - 1]),
])
def test_loads_reads_like_json_loads(flask_app, text, expected):
    assert flask_app.json.loads(text) == json.loads(text) == expected


def test_documents_orjson_refuses_are_read_by_the_standard_library(flask_app):
    assert math.isnan(flask_app.json.loads(b'{"p": NaN}')["p"])
    assert flask_app.json.loads(b"[1" + b"0" * 400 + b"]") == [10 ** 400]  # exact, not inf
    with pytest.raises(json.JSONDecodeError):
        flask_app.json.loads(b'{"a": ')
    with pytest.raises(RecursionError):
        flask_app.json.loads(b"[" * 100_000 + b"]" * 100_000)


def test_the_service_answers_through_it(client):
    from accident_api.schemas import SEED_RECORD

    response = client.post("/predict", json=SEED_RECORD)
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_data()
    assert body.endswith(b"}\n") and b": " not in body  # compact, like before
    assert list(json.loads(body)) == ["imputed", "label", "model_version", "prediction",
                                      "prediction_id", "probability"]
