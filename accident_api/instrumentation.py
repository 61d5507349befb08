"""HTTP metrics: every response counted and timed by one hook, in-flight tracked around it.

prometheus-flask-exporter defines the HTTP latency histogram and request counter
(`flask_http_request_duration_seconds{method, path, status}`, `flask_http_request_total{method,
status}`, `flask_http_request_exceptions_total`, `flask_exporter_info`). `RequestMetrics` keeps
that extension (app factory, bucket and exclusion settings, metric names and labels) and
replaces only its per-request hooks: the stock ones cost ~60 µs per request (a regex over the
path, a dozen request-proxy lookups and fresh label dictionaries on every response, measured in
bench/), most of the monitoring budget of a 0.5 ms request. Here the label children of a
(method, URL rule, status) combination are resolved once, and the same hook also records the
service's own `http_requests_total` and failed predictions.
"""
from time import perf_counter

from flask import Flask, request
from prometheus_client import Counter, Histogram
from prometheus_flask_exporter import PrometheusMetrics

from monitoring import metrics

# Endpoints that predict: a response >= 400 from one of them is a failed prediction request.
PREDICTION_ENDPOINTS = frozenset({
    "predictions.predict", "predictions.predict_batch", "v2.model_infer",
    "v2.model_version_infer",
})
START_KEY = "accident_api.request_start"  # WSGI environ key: when the request reached the app
UNMATCHED = "unmatched"  # endpoint and path label of a request no URL rule matched (404, 405)
METRICS_EXTENSION = "accident_api.request_metrics"


class InFlightTimer:
    """WSGI middleware: in-flight gauge up while the app handles a request, start time noted.

    Around the whole app call, so the gauge goes back down whatever the app raises and the
    latency includes routing and the request context, not only the view.
    """

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        environ[START_KEY] = perf_counter()
        in_flight, record = metrics.IN_FLIGHT, metrics.recorder  # buffered in a worker
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
    """prometheus-flask-exporter with its default metrics recorded by one cheap hook per app.

    The metrics exist once per process (the first `init_app` builds them with this instance's
    buckets); every app given to `init_app` gets the hooks. The URL-rule label is named
    `path`, the exporter's own name for its default grouping.
    """

    def __init__(self, *args, **kwargs):
        self._duration = self._total = self._exceptions = None
        self._series = {}  # (method, endpoint, rule, status) -> _ResponseSeries
        super().__init__(*args, **kwargs)

    def export_defaults(self, buckets=None, group_by="path", latency_as_histogram=True,
                        prefix="flask", app=None, **kwargs):
        """Build the exporter's default metrics (once) and hook `app` to record them."""
        if self._duration is None:
            prefix = f"{prefix or self._defaults_prefix}_"
            self._duration = Histogram(
                f"{prefix}http_request_duration_seconds", "Flask HTTP request duration in "
                "seconds, by method, URL rule (`path`) and status.", ("method", "path", "status"),
                registry=self.registry, **({"buckets": buckets} if buckets else {}))
            self._total = Counter(
                f"{prefix}http_request_total", "Total number of HTTP requests.",
                ("method", "status"), registry=self.registry)
            self._exceptions = Counter(
                f"{prefix}http_request_exceptions_total", "HTTP requests that ended in an "
                "unexpected exception (answered 500).", ("method", "status"),
                registry=self.registry)
            self.info(f"{prefix}exporter_info", "Information about the Prometheus Flask "
                      "exporter", version=self.version)
        app.extensions[METRICS_EXTENSION] = self
        app.wsgi_app = InFlightTimer(app.wsgi_app)
        app.after_request(self._record)

    def _series_for(self, method, endpoint, rule, status) -> _ResponseSeries:
        key = (method, endpoint, rule, status)
        series = self._series.get(key)
        if series is None:
            excluded = self.excluded_paths and any(p.match(rule) for p in self.excluded_paths)
            series = self._series[key] = _ResponseSeries(
                None if excluded else self._duration.labels(method, rule, status),
                None if excluded else self._total.labels(method, status),
                metrics.HTTP_REQUESTS.labels(method, endpoint, status),
                endpoint in PREDICTION_ENDPOINTS and int(status) >= 400)
        return series

    def _record(self, response):
        req = request._get_current_object()  # one proxy lookup instead of one per attribute
        start = req.environ.get(START_KEY)
        status = str(response.status_code)
        rule = req.url_rule
        if rule is None:  # label sets stay bounded: every unknown path is one value
            series = self._series_for(req.method, UNMATCHED, UNMATCHED, status)
            if self.excluded_paths and any(p.match(req.path) for p in self.excluded_paths):
                series = _ResponseSeries(None, None, series.http_requests, False)
        else:
            series = self._series_for(req.method, rule.endpoint, rule.rule, status)
        record = metrics.recorder  # buffered in a gunicorn worker (monitoring.recorder)
        if series.duration is not None:
            if start is not None:
                record.observe(series.duration, max(perf_counter() - start, 0.0))
            record.inc(series.total)
        record.inc(series.http_requests)
        if series.failed_prediction:
            metrics.record_failed_prediction()
        return response

    def count_exception(self, method: str) -> None:
        """flask_http_request_exceptions_total{method, status="500"} += 1 (an unexpected fault)."""
        self._exceptions.labels(method, "500").inc()


def count_exception(app: Flask, method: str) -> None:
    """Count an unexpected exception of `app` when its HTTP metrics are on."""
    request_metrics = app.extensions.get(METRICS_EXTENSION)
    if request_metrics is not None:
        request_metrics.count_exception(method)
