"""A seed-style reference service (FastAPI + uvicorn), written only to be benchmarked against.

It reproduces how the project's seed served the model, so `bench/run.py` can measure our
service against it on the same machine: a pydantic request model turned into a one-row pandas
DataFrame per request, the scikit-learn forest's `predict` with `n_jobs` as trained (-1), two
uvicorn workers that each load their own copy of the artifact, and the seed's two metrics.
It is not part of the product and is never deployed.
"""
