"""Flask extensions, created unbound here and bound to each app in `create_app` (init_app)."""
import flask_smorest
from prometheus_flask_exporter import PrometheusMetrics

from accident_api.config import Config
from accident_api.errors import http_error_response


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

# Latency histogram and request counter of prometheus-flask-exporter. `path=None`: metrics are
# never served on the API port, only by the sidecar exporter (monitoring.exporter).
http_metrics = PrometheusMetrics.for_app_factory(
    path=None,
    group_by=path,
    buckets=Config.from_env().HTTP_DURATION_BUCKETS,
    # one alternation, not a list: the exporter tries each pattern on every request
    excluded_paths=r"^(?:/metrics|/health/|/v2/health/|/v2/models/[^/]+(?:/versions/[^/]+)?/ready$"
                   r"|/docs|/openapi\.json$)",
)
