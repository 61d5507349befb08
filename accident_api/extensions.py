"""Flask extensions: flask-smorest's Api (bound to each app in `create_app`) and the
prometheus-flask-exporter latency metrics (built once per process from the app's Config)."""
import flask_smorest
from prometheus_flask_exporter import PrometheusMetrics

from accident_api.config import ConfigError
from accident_api.errors import http_error_response

# Latency histogram exclusions: the metrics endpoint, probes and docs. One alternation, not a
# list: the exporter tries each pattern on every request.
EXCLUDED_PATHS = (r"^(?:/metrics|/health/|/v2/health/|/v2/models/[^/]+(?:/versions/[^/]+)?/ready$"
                  r"|/docs|/openapi\.json$)")


class Api(flask_smorest.Api):
    """flask-smorest's Api whose HTTP errors always carry a message (V2 paths: the V2 format)."""

    def handle_http_exception(self, error):
        return http_error_response(error)


def path(request):
    """Latency label: the matched URL rule (bounded), "unmatched" for unknown paths.

    Named `path` because prometheus-flask-exporter names the label after this function, and
    the metrics contract is flask_http_request_duration_seconds{method, path, status}.
    """
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


api = Api()
_http_metrics = None  # this process's PrometheusMetrics, built by the first app


def init_http_metrics(app) -> PrometheusMetrics:
    """prometheus-flask-exporter's latency histogram and request counter for `app`.

    Built on the first call in a process with the app's HTTP_DURATION_BUCKETS; its metrics
    exist once per process, so it registers its hooks on that first app only (one app per
    gunicorn process; further test apps share its metrics). A later app asking for other
    buckets is refused rather than silently given the first ones. `path=None`: metrics are
    never served on the API port, only by the sidecar exporter (monitoring.exporter).
    """
    global _http_metrics
    buckets = tuple(float(edge) for edge in app.config["HTTP_DURATION_BUCKETS"])
    if _http_metrics is None:
        _http_metrics = PrometheusMetrics.for_app_factory(
            path=None, group_by=path, buckets=buckets, excluded_paths=EXCLUDED_PATHS)
    elif tuple(_http_metrics.buckets) != buckets:
        raise ConfigError(f"HTTP_DURATION_BUCKETS={buckets} differs from the "
                          f"{tuple(_http_metrics.buckets)} this process's latency histogram "
                          "was built with")
    _http_metrics.init_app(app)
    return _http_metrics
