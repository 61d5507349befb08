"""Config: every setting of the service, read from environment variables in this one place."""
import os
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Mapping

VERSION = version("accident-api")
MODEL_EXTENSION = "accident_api.model"  # app.extensions key of the served model

OPENAPI_SETTINGS = {
    "API_TITLE": "accident-api",
    "API_VERSION": VERSION,
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    "OPENAPI_SWAGGER_UI_URL": "/docs/assets/",  # accident_api.blueprints.docs_assets: no CDN
    "API_SPEC_OPTIONS": {
        "info": {"description": "Severity of French road accidents (BAAC open data) predicted by "
                                "a RandomForest, with Prometheus monitoring. Errors use "
                                "`{code, status, message, errors}`; under /v2 the Open "
                                "Inference Protocol's `{\"error\": ...}`."},
    },
}


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot use."""


def _int(env, name, default, minimum):
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be >= {minimum}")
    return value


def _buckets(env, name, default):
    """Comma-separated, strictly increasing histogram bucket edges (e.g. '0.001,0.01,0.1')."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        edges = tuple(float(part) for part in raw.split(","))
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a comma-separated list of numbers") from None
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise ConfigError(f"{name}={raw!r} must be strictly increasing")
    return edges


def _bool(env, name, default):
    """A switch: 1/true/yes/on or 0/false/no/off (any case); unset or empty -> default."""
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} must be 1/true/yes/on or 0/false/no/off")


def _readable_file(env, name):
    path = (env.get(name) or "").strip()
    if path and not os.access(path, os.R_OK):
        raise ConfigError(f"{name}={path!r} is not a readable file")
    return path or None


def _choice(env, name, default, choices):
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


INFERENCE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                     0.25, 0.5, 1.0)
PROBABILITY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
HTTP_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class Config:
    """Service settings; upper-case fields, so `app.config.from_object(Config.from_env())` works.

    Defaults are the documented ones (README, "Configuration"); `from_env` overrides each from
    the variable of the same name.
    """

    MODEL_PATH: str = "models"
    MODEL_BACKEND: str = "onnx"
    HOST: str = "127.0.0.1"
    PORT: int = 8000
    METRICS_PORT: int = 9200
    WEB_CONCURRENCY: int = 2
    MAX_BATCH_SIZE: int = 1000
    MAX_CONTENT_LENGTH: int = 2 * 1024 * 1024
    LOG_LEVEL: str = "info"
    # gunicorn's access log on stdout; off by default, as in gunicorn (docs/operations.md, "Logs").
    ACCESS_LOG: bool = False
    # None: a directory of this PORT's under the system's temporary directory (see
    # `metrics_dir`), wiped at start like any other.
    PROMETHEUS_MULTIPROC_DIR: str | None = None
    GUNICORN_TIMEOUT: int = 30
    GRACEFUL_TIMEOUT: int = 30
    MAX_REQUESTS: int = 10000
    MAX_REQUESTS_JITTER: int = 1000
    INFERENCE_BUCKETS: tuple = INFERENCE_BUCKETS
    PROBABILITY_BUCKETS: tuple = PROBABILITY_BUCKETS
    BATCH_SIZE_BUCKETS: tuple = BATCH_SIZE_BUCKETS
    HTTP_DURATION_BUCKETS: tuple = HTTP_DURATION_BUCKETS
    # How often a gunicorn worker writes its summed metric updates (monitoring.recorder);
    # 0: every update written at once.
    METRICS_FLUSH_MS: int = 200
    # The prediction log (monitoring.prediction_log): every served prediction, for feedback
    # and offline analysis. SQLite in DATA_DIR unless PREDICTION_LOG_URL names a database.
    PREDICTION_LOG: bool = True
    DATA_DIR: str = "data"
    PREDICTION_LOG_URL: str | None = field(default=None, repr=False)  # may hold a password
    PREDICTION_LOG_FEATURES: bool = True
    PREDICTION_LOG_RETENTION_DAYS: int = 90
    PREDICTION_LOG_FLUSH_MS: int = 200
    PREDICTION_LOG_MAX_PENDING: int = 50_000
    # API keys for the prediction and feedback endpoints (accident_api.security): none = off.
    # repr=False: a logged or printed Config never shows a key.
    API_KEYS: tuple = field(default=(), repr=False)
    API_KEYS_FILE: str | None = None

    def metrics_dir(self) -> str:
        """The multiprocess metrics directory: PROMETHEUS_MULTIPROC_DIR, or one per PORT."""
        return self.PROMETHEUS_MULTIPROC_DIR or str(
            Path(tempfile.gettempdir()) / f"accident-api-metrics-{self.PORT}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        """Build the settings from `environ` (default: the process environment)."""
        env = os.environ if environ is None else environ
        d = cls()
        return cls(
            MODEL_PATH=env.get("MODEL_PATH") or d.MODEL_PATH,
            MODEL_BACKEND=_choice(env, "MODEL_BACKEND", d.MODEL_BACKEND, ("onnx", "sklearn")),
            HOST=env.get("HOST") or d.HOST,
            PORT=_int(env, "PORT", d.PORT, 0),
            METRICS_PORT=_int(env, "METRICS_PORT", d.METRICS_PORT, 0),
            WEB_CONCURRENCY=_int(env, "WEB_CONCURRENCY", d.WEB_CONCURRENCY, 1),
            MAX_BATCH_SIZE=_int(env, "MAX_BATCH_SIZE", d.MAX_BATCH_SIZE, 1),
            MAX_CONTENT_LENGTH=_int(env, "MAX_CONTENT_LENGTH", d.MAX_CONTENT_LENGTH, 1024),
            LOG_LEVEL=_choice(env, "LOG_LEVEL", d.LOG_LEVEL,
                              ("debug", "info", "warning", "error", "critical")),
            ACCESS_LOG=_bool(env, "ACCESS_LOG", d.ACCESS_LOG),
            PROMETHEUS_MULTIPROC_DIR=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
            GUNICORN_TIMEOUT=_int(env, "GUNICORN_TIMEOUT", d.GUNICORN_TIMEOUT, 1),
            GRACEFUL_TIMEOUT=_int(env, "GRACEFUL_TIMEOUT", d.GRACEFUL_TIMEOUT, 0),
            MAX_REQUESTS=_int(env, "MAX_REQUESTS", d.MAX_REQUESTS, 0),
            MAX_REQUESTS_JITTER=_int(env, "MAX_REQUESTS_JITTER", d.MAX_REQUESTS_JITTER, 0),
            INFERENCE_BUCKETS=_buckets(env, "INFERENCE_BUCKETS", d.INFERENCE_BUCKETS),
            PROBABILITY_BUCKETS=_buckets(env, "PROBABILITY_BUCKETS", d.PROBABILITY_BUCKETS),
            BATCH_SIZE_BUCKETS=_buckets(env, "BATCH_SIZE_BUCKETS", d.BATCH_SIZE_BUCKETS),
            HTTP_DURATION_BUCKETS=_buckets(env, "HTTP_DURATION_BUCKETS", d.HTTP_DURATION_BUCKETS),
            METRICS_FLUSH_MS=_int(env, "METRICS_FLUSH_MS", d.METRICS_FLUSH_MS, 0),
            PREDICTION_LOG=_bool(env, "PREDICTION_LOG", d.PREDICTION_LOG),
            DATA_DIR=env.get("DATA_DIR") or d.DATA_DIR,
            PREDICTION_LOG_URL=env.get("PREDICTION_LOG_URL") or None,
            PREDICTION_LOG_FEATURES=_bool(env, "PREDICTION_LOG_FEATURES",
                                          d.PREDICTION_LOG_FEATURES),
            PREDICTION_LOG_RETENTION_DAYS=_int(env, "PREDICTION_LOG_RETENTION_DAYS",
                                               d.PREDICTION_LOG_RETENTION_DAYS, 1),
            PREDICTION_LOG_FLUSH_MS=_int(env, "PREDICTION_LOG_FLUSH_MS",
                                         d.PREDICTION_LOG_FLUSH_MS, 10),
            PREDICTION_LOG_MAX_PENDING=_int(env, "PREDICTION_LOG_MAX_PENDING",
                                            d.PREDICTION_LOG_MAX_PENDING, 1),
            API_KEYS=tuple(k.strip() for k in (env.get("API_KEYS") or "").split(",") if k.strip()),
            API_KEYS_FILE=_readable_file(env, "API_KEYS_FILE"),
        )
