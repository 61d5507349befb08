"""HTTP layer of accident-api: the Flask application factory lives here.

Blueprints and metrics are imported inside `create_app`, not at module level, so that
`accident_api.config` can be imported (by gunicorn.conf.py) before prometheus_client is: the
client fixes its multiprocess mode on first import.
"""
import logging

from flask import Flask

from accident_api.config import Config

__version__ = "0.1.0"
MODEL_EXTENSION = "accident_api.model"  # app.extensions key of the ModelService

OPENAPI_SETTINGS = {
    "API_TITLE": "accident-api",
    "API_VERSION": __version__,
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    "OPENAPI_SWAGGER_UI_URL": "/docs/assets/",  # accident_api.docs_assets: no CDN
    "API_SPEC_OPTIONS": {
        "info": {"description": "Severity of French road accidents (BAAC open data) predicted by "
                                "a RandomForest, with Prometheus monitoring. Errors use "
                                "`{code, status, message, errors}`; under /v2 the Open "
                                "Inference Protocol's `{\"error\": ...}`."},
    },
}


def create_app(test_config=None) -> Flask:
    """Build the app: config -> extensions and metrics hooks -> model -> blueprints -> errors."""
    from accident_api import docs_assets, errors, meta, predictions, security, v2
    from accident_api.extensions import api, init_http_metrics
    from accident_api.inference import ModelService
    from accident_api.json_provider import OrjsonProvider
    from monitoring import metrics

    app = Flask(__name__)
    app.json = OrjsonProvider(app)  # request bodies and responses (accident_api.json_provider)
    app.config.update(OPENAPI_SETTINGS)
    app.config.from_object(Config.from_env())
    app.config.update(test_config or {})
    app.logger.setLevel(getattr(logging, str(app.config["LOG_LEVEL"]).upper()))
    # The metric objects, once per process, from this app's config (the model, the WSGI
    # guards and the V2 checks record into them even when the HTTP hooks are off).
    metrics.init_metrics(inference_buckets=app.config["INFERENCE_BUCKETS"],
                         probability_buckets=app.config["PROBABILITY_BUCKETS"],
                         batch_size_buckets=app.config["BATCH_SIZE_BUCKETS"])
    if app.config["METRICS_ENABLED"]:  # off only to measure monitoring's cost (bench/)
        init_http_metrics(app)  # latency histogram, request counters, in-flight gauge
    api.init_app(app)
    security.init_app(app)  # API keys (when configured), security headers, debug off
    app.extensions[MODEL_EXTENSION] = ModelService.load(
        app.config["MODEL_PATH"], app.config["MODEL_BACKEND"], app.config["METRICS_ENABLED"],
        multiproc_dir=app.config["PROMETHEUS_MULTIPROC_DIR"])  # drift counts: files or memory
    for blueprint in (meta.blp, predictions.blp, v2.blp):
        api.register_blueprint(blueprint)
    app.register_blueprint(docs_assets.blp)
    security.document_api(api, app)
    app.register_error_handler(Exception, errors.handle_unexpected)
    from accident_api import wsgi_guards
    wsgi_guards.install(app)  # unknown methods, chunked bodies: handled before Flask routes
    return app
