"""The framework ceiling: Flask on gunicorn parsing the body and returning a constant.

`gunicorn -w 2 bench.ceiling_app:app`. It does what every Flask JSON endpoint must do (read
and parse the JSON body, serialise a JSON response) and nothing else, so no service of ours
on the same server can be faster; `bench/run.py` reports our throughput as a share of it.
"""
from flask import Flask, jsonify, request

from bench.payloads import SEED_RECORD

app = Flask(__name__)

_ANSWER = {"prediction": 0, "probability": 0.0, "label": "not_severe", "model_version": "ceiling"}


@app.post("/predict")
def predict():
    """Parse the record like the real service, then answer a constant."""
    record = request.get_json()
    if not isinstance(record, dict):
        return jsonify(message="expected a JSON object"), 400
    return jsonify(_ANSWER)


@app.get("/model")
def model():
    """Feature names only: load/run.py reads `/model` once before replaying its records."""
    return jsonify(features=[{"name": name} for name in SEED_RECORD])


@app.post("/predict/batch")
def predict_batch():
    """Parse a batch and answer one constant item per record."""
    records = request.get_json().get("records", [])
    return jsonify(predictions=[_ANSWER] * len(records))
