"""ASGI entry: `BENCH_MODEL_PATH=DIR uvicorn bench.seed_reference.main:app --workers 2`.

uvicorn's `--workers` needs an import string, so every worker imports this module and loads
its own copy of the model, as the seed's two workers did.
"""
from bench.seed_reference.app import create_app

app = create_app()
