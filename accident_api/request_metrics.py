"""HTTP metrics: every response counted and timed by one hook, requests in flight around it.

prometheus-flask-exporter defines the HTTP latency histogram and request counters
(`flask_http_request_duration_seconds{method, path, status}`, `flask_http_request_total{method,
status}`, `flask_http_request_exceptions_total`, `flask_exporter_info`). `RequestMetrics` keeps
that extension (app factory, bucket and exclusion settings, metric names and labels) and
replaces its per-request hooks by one `after_request` hook that writes through the recorder
(monitoring.recorder), with the label children of a (method, URL rule, status) resolved once.
The same hook records the service's own `http_requests_total` and failed predictions. Methods
outside `KNOWN_METHODS` are labelled "other": gunicorn accepts any token as a method, and each
one would otherwise become a label value a client controls.
"""
from time import perf_counter

from flask import Flask, request
from prometheus_client import Counter, Histogram
from prometheus_flask_exporter import PrometheusMetrics

from accident_api.blueprints import PREDICTION_ENDPOINTS
from monitoring import metrics

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
START_KEY = "accident_api.request_start"  # WSGI environ key: when the request reached the app
UNMATCHED = "unmatched"  # endpoint and path label of a request no URL rule matched (404, 405)
METRICS_EXTENSION = "accident_api.request_metrics"


class InFlight:
    """WSGI middleware: the in-flight gauge is up while the app handles a request; the start
    time is noted for the latency histogram.

    Around the whole app call, so the gauge goes back down whatever the app raises and the
    latency includes routing and the request context, not only the view.
    """

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        environ[START_KEY] = perf_counter()
        in_flight, record = metrics.IN_FLIGHT, metrics.recorder
        record.inc(in_flight, 1)
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            record.inc(in_flight, -1)


class _ResponseSeries:
    """The label children one (method, endpoint, rule, status) combination writes to."""

    __slots__ = ("duration", "total", "http_requests", "failed_prediction")

    def __init__(self, duration, total, http_requests, failed_prediction):
        self.duration = duration  # None when the path is excluded from the exporter's metrics
        self.total = total
        self.http_requests = http_requests
        self.failed_prediction = failed_prediction


class RequestMetrics(PrometheusMetrics):
    """prometheus-flask-exporter with its default metrics recorded by one hook per app.

    The metrics exist once per process (the first `init_app` builds them with this instance's
    buckets); every app given to `init_app` gets the hook. The URL-rule label is named
    `path`, the exporter's own name for its default grouping.
    """

    def __init__(self, *args, **kwargs):
        self.duration = self.total = self.exceptions = None
        self.series = {}  # (method, endpoint, rule, status) -> _ResponseSeries
        super().__init__(*args, **kwargs)

    def export_defaults(self, buckets=None, group_by="path", latency_as_histogram=True,
                        prefix="flask", app=None, **kwargs):
        """Build the exporter's default metrics (once) and hook `app` to record them."""
        if self.duration is None:
            prefix = f"{prefix or 'flask'}_"
            self.duration = Histogram(
                f"{prefix}http_request_duration_seconds", "Flask HTTP request duration in "
                "seconds, by method, URL rule (`path`) and status.", ("method", "path", "status"),
                registry=self.registry, **({"buckets": buckets} if buckets else {}))
            self.total = Counter(
                f"{prefix}http_request_total", "Total number of HTTP requests.",
                ("method", "status"), registry=self.registry)
            self.exceptions = Counter(
                f"{prefix}http_request_exceptions_total", "HTTP requests that ended in an "
                "unexpected exception (answered 500).", ("method", "status"),
                registry=self.registry)
            self.info(f"{prefix}exporter_info", "Information about the Prometheus Flask "
                      "exporter", version=self.version)
        app.extensions[METRICS_EXTENSION] = self
        app.after_request(self.record)

    def series_for(self, method, endpoint, rule, status) -> _ResponseSeries:
        """The label children of one combination, resolved on its first response."""
        key = (method, endpoint, rule, status)
        series = self.series.get(key)
        if series is None:
            excluded = self.excluded_paths and any(p.match(rule) for p in self.excluded_paths)
            series = self.series[key] = _ResponseSeries(
                None if excluded else self.duration.labels(method, rule, status),
                None if excluded else self.total.labels(method, status),
                metrics.HTTP_REQUESTS.labels(method, endpoint, status),
                endpoint in PREDICTION_ENDPOINTS and int(status) >= 400)
        return series

    def record(self, response):
        """after_request: count and time `response` (through the recorder)."""
        method = request.method if request.method in KNOWN_METHODS else "other"
        status = str(response.status_code)
        rule = request.url_rule
        if rule is None:  # label sets stay bounded: every unknown path is one value
            series = self.series_for(method, UNMATCHED, UNMATCHED, status)
            if self.excluded_paths and any(p.match(request.path) for p in self.excluded_paths):
                series = _ResponseSeries(None, None, series.http_requests, False)
        else:
            series = self.series_for(method, rule.endpoint, rule.rule, status)
        record = metrics.recorder
        if series.duration is not None:
            start = request.environ.get(START_KEY)
            if start is not None:
                record.observe(series.duration, max(perf_counter() - start, 0.0))
            record.inc(series.total)
        record.inc(series.http_requests)
        if series.failed_prediction:
            metrics.record_failed_prediction()
        return response

    def count_exception(self, method: str) -> None:
        """flask_http_request_exceptions_total{method, status="500"} += 1 (an unexpected fault)."""
        method = method if method in KNOWN_METHODS else "other"
        metrics.recorder.inc(self.exceptions.labels(method, "500"))


def count_exception(app: Flask, method: str) -> None:
    """Count an unexpected exception of `app`."""
    app.extensions[METRICS_EXTENSION].count_exception(method)
