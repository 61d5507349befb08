"""The seed-style FastAPI app factory (served by `bench.seed_reference.main`).

The model is read from `$BENCH_MODEL_PATH` (a model directory holding `model.joblib`, or the
joblib file itself) with a bare `joblib.load`, as the seed did: no card or hash check, which is
fine here only because the benchmark trains the artifact itself.
"""
import json
import os
import time
import warnings
from pathlib import Path

import joblib
import pandas as pd
from fastapi import FastAPI, HTTPException, Request
from prometheus_client import CollectorRegistry, Counter, Histogram, make_asgi_app

from bench.seed_reference.schema import Accident

# Our artifact is fitted on a plain float64 array; the seed fitted on a DataFrame. Passing a
# DataFrame to a forest fitted without names makes sklearn warn on every call, which the seed
# never paid for, so the warning is silenced rather than counted against the seed.
warnings.filterwarnings("ignore", message="X has feature names")


def load_seed_model(path):
    """Load the forest as the seed did and restore its `n_jobs=-1` ("as trained" in the seed).

    Our training pins `n_jobs=1` for serving; the seed's forest was trained and served with
    `n_jobs=-1`, which makes every single-row `predict` fan out over a joblib thread pool.
    """
    path = Path(path)
    forest = joblib.load(path / "model.joblib" if path.is_dir() else path)
    forest.n_jobs = -1
    return forest


def create_app(model_path=None):
    """Build the seed-style app: `/predict`, `/` and the seed's metrics on `/metrics`.

    It also serves the model card at `/model`, which the seed did not have: `load/run.py`
    reads the card once before its run, and the benchmark drives every server with it.
    """
    model_path = Path(model_path or os.environ.get("BENCH_MODEL_PATH", "models"))
    forest = load_seed_model(model_path)
    card_path = (model_path if model_path.is_dir() else model_path.parent) / "model_card.json"
    registry = CollectorRegistry()
    requests_total = Counter("http_requests_total", "HTTP requests",
                             ["method", "endpoint", "status"], registry=registry)
    inference_time = Histogram("inference_time_seconds", "Model inference time",
                               registry=registry)
    predict_total = Counter("api_predict_total", "Predictions", ["outcome"], registry=registry)

    app = FastAPI(title="seed-style reference (benchmark only)")
    app.mount("/metrics", make_asgi_app(registry=registry))

    @app.middleware("http")
    async def count_requests(request: Request, call_next):
        response = await call_next(request)
        requests_total.labels(request.method, request.url.path, response.status_code).inc()
        return response

    @app.get("/")
    def root():
        return {"message": "seed-style reference service"}

    @app.get("/model")
    def model_card():
        if not card_path.exists():
            raise HTTPException(404, f"no {card_path}")
        return json.loads(card_path.read_text())

    # A plain `def` like the seed's route: FastAPI runs it in its threadpool.
    @app.post("/predict")
    def predict(accident: Accident):
        features = pd.DataFrame([accident.model_dump()])
        start = time.perf_counter()
        try:
            prediction = forest.predict(features)
        except Exception:
            predict_total.labels("error").inc()
            raise
        inference_time.observe(time.perf_counter() - start)
        predict_total.labels("success").inc()
        return {"prediction": int(prediction[0])}

    return app

