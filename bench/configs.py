"""The six servers `run.py` compares, and the command line that starts each one.

  a  seed-style reference: FastAPI + uvicorn, 2 workers, pandas + sklearn predict, n_jobs=-1
  b  our service (gunicorn.conf.py, wsgi:app), scikit-learn backend, monitoring on
  c  our service, ONNX Runtime backend, monitoring on (the configuration the targets judge)
  d  constant-returning Flask app on gunicorn, 2 sync workers (framework ceiling)
  e  c behind the repo's nginx (deploy/nginx, bench/proxied.py): what the proxy costs
  f  c without the prediction log (PREDICTION_LOG=0): what logging every prediction costs

The ceiling and our service read ACCESS_LOG from the same environment (bench/run.py
--access-log), so the two always run with the same access-log setting.
"""
from dataclasses import dataclass, field
from pathlib import Path

WORKERS = 2


@dataclass(frozen=True)
class ServerConfig:
    """One server under test: key, label, kind of launcher and its extra environment."""

    key: str
    label: str
    kind: str                      # "seed" | "service" | "ceiling" | "proxied"
    env: dict = field(default_factory=dict)
    replicas: int = 1              # "proxied": service instances behind nginx
    batch: bool = True             # has /predict/batch worth measuring
    slow: bool = False             # open-model pass at the low (seed) rate


CONFIGS = (
    ServerConfig("a", "seed-style FastAPI+uvicorn, sklearn n_jobs=-1", "seed",
                 batch=False, slow=True),
    ServerConfig("b", "our service, sklearn backend", "service",
                 {"MODEL_BACKEND": "sklearn"}),
    ServerConfig("c", "our service, ONNX backend", "service", {"MODEL_BACKEND": "onnx"}),
    ServerConfig("d", "ceiling: Flask+gunicorn constant", "ceiling"),
    ServerConfig("e", "our service, ONNX, behind nginx", "proxied", {"MODEL_BACKEND": "onnx"}),
    ServerConfig("f", "our service, ONNX, no prediction log", "service",
                 {"MODEL_BACKEND": "onnx", "PREDICTION_LOG": "0"}),
)


def by_keys(keys):
    """The configs whose keys are in `keys` (e.g. "abcdef"), in the canonical order."""
    unknown = set(keys) - {config.key for config in CONFIGS}
    if unknown:
        keys = "".join(config.key for config in CONFIGS)
        raise ValueError(f"unknown server key(s): {''.join(sorted(unknown))} (use {keys})")
    return [config for config in CONFIGS if config.key in keys]


def command(config, python, port, model_dir, work_dir):
    """The argv and extra environment that start `config` on 127.0.0.1:`port`."""
    if config.kind == "seed":
        argv = [python, "-m", "uvicorn", "bench.seed_reference.main:app",
                "--workers", str(WORKERS), "--host", "127.0.0.1", "--port", str(port)]
        return argv, {"BENCH_MODEL_PATH": str(model_dir)}
    if config.kind == "ceiling":
        argv = [python, "-m", "gunicorn", "-c", "python:bench.ceiling_gunicorn",
                "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}",
                "bench.ceiling_app:app"]
        return argv, {}
    env = {"MODEL_PATH": str(model_dir), "HOST": "127.0.0.1", "WEB_CONCURRENCY": str(WORKERS),
           # Steady-state serving: no max_requests worker recycling in the middle of a pass.
           "MAX_REQUESTS": "0",
           # each server's own prediction log (SQLite), like a fresh deployment's
           "DATA_DIR": str(Path(work_dir) / f"data-{config.key}-{port}"), **config.env}
    if config.kind == "proxied":  # the launcher gives each instance its ports and metrics dir
        return [python, "-m", "bench.proxied", str(port), str(config.replicas),
                str(work_dir)], env
    from bench.servers import free_port  # only services need a second (metrics) port
    prom_dir = Path(work_dir) / f"prometheus-{config.key}-{port}"
    prom_dir.mkdir(parents=True, exist_ok=True)
    env.update({"PORT": str(port), "METRICS_PORT": str(free_port()),
                "PROMETHEUS_MULTIPROC_DIR": str(prom_dir)})
    return [python, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"], env
