"""Flask extensions: flask-smorest's Api (bound to each app in `create_app`) and the
prometheus-flask-exporter HTTP metrics (built once per process from the app's Config)."""
import flask_smorest

from accident_api.config import ConfigError
from accident_api.errors import http_error_response
from accident_api.request_metrics import RequestMetrics

# Latency histogram exclusions: the metrics endpoint, probes and docs (matched against the URL
# rule once per rule, against the raw path only for unmatched requests).
EXCLUDED_PATHS = (r"^(?:/metrics|/health/|/v2/health/|/v2/models/[^/]+(?:/versions/[^/]+)?/ready$"
                  r"|/docs|/openapi\.json$)")


class Api(flask_smorest.Api):
    """flask-smorest's Api whose HTTP errors always carry a message (V2 paths: the V2 format)."""

    def handle_http_exception(self, error):
        return http_error_response(error)


api = Api()
_request_metrics = None  # this process's RequestMetrics, built by the first app


def init_request_metrics(app) -> RequestMetrics:
    """The HTTP metrics (latency histogram, request counters) recorded for `app`.

    Built on the first call in a process with the app's HTTP_DURATION_BUCKETS; the metrics
    exist once per process and every app gets the hook that records them (one app per
    gunicorn process; test apps share the metrics). A later app asking for other buckets is
    refused rather than silently given the first ones. `path=None`: metrics are never served
    on the API port, only by the sidecar exporter (monitoring.exporter).
    """
    global _request_metrics
    buckets = tuple(float(edge) for edge in app.config["HTTP_DURATION_BUCKETS"])
    if _request_metrics is None:
        _request_metrics = RequestMetrics.for_app_factory(
            path=None, buckets=buckets, excluded_paths=EXCLUDED_PATHS)
    elif tuple(_request_metrics.buckets) != buckets:
        raise ConfigError(f"HTTP_DURATION_BUCKETS={buckets} differs from the "
                          f"{tuple(_request_metrics.buckets)} this process's latency histogram "
                          "was built with")
    _request_metrics.init_app(app)
    return _request_metrics
