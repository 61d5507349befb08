"""The web layer of accident-api: `create_app` builds the Flask application."""
import logging

from flask import Flask

from accident_api.config import OPENAPI_SETTINGS, Config


def create_app(test_config=None) -> Flask:
    """Build the app: config -> metrics -> extensions -> served model -> blueprints -> errors,
    then the WSGI middleware around it."""
    # Imported here, as Flask's tutorial imports its blueprints: gunicorn.conf.py imports
    # accident_api.config before the multiprocess directory exists, and prometheus_client
    # fixes where metrics are stored when it is first imported.
    from accident_api import errors, security
    from accident_api.blueprints import docs_assets, feedback, meta, predictions, v2
    from accident_api.extensions import api, init_request_metrics
    from accident_api.http_json import OrjsonProvider
    from accident_api.openapi import ServiceDocs
    from accident_api.request_metrics import InFlight
    from accident_api.server.chunked import ChunkedBodyLimit
    from accident_api.service import ServedModel
    from monitoring import metrics

    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    app.config.update(OPENAPI_SETTINGS)
    app.config.from_object(Config.from_env())
    app.config.update(test_config or {})
    app.logger.setLevel(getattr(logging, str(app.config["LOG_LEVEL"]).upper()))
    metrics.init_metrics(inference_buckets=app.config["INFERENCE_BUCKETS"],
                         probability_buckets=app.config["PROBABILITY_BUCKETS"],
                         batch_size_buckets=app.config["BATCH_SIZE_BUCKETS"])
    init_request_metrics(app)  # latency histogram, request counters
    security.init_app(app)  # API keys (when configured), security headers, debug off
    api.init_app(app, spec_kwargs={
        "extra_plugins": [ServiceDocs(api_keys=security.keys_configured(app))]})
    ServedModel.install(app)
    for blueprint in (meta.blp, predictions.blp, feedback.blp, v2.blp):
        api.register_blueprint(blueprint)
    app.register_blueprint(docs_assets.blp)
    app.register_error_handler(Exception, errors.handle_unexpected)
    # outermost first: a chunked body is held to MAX_CONTENT_LENGTH before anything reads it;
    # then the request is in flight (and timed) until the app's response is returned
    app.wsgi_app = ChunkedBodyLimit(app.config, InFlight(app.wsgi_app))
    return app
