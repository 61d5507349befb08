"""Every Prometheus metric of the service, defined once (names are a public contract: README).

The metric objects are built by `init_metrics`, once per process, from the bucket edges the
application's Config carries (accident_api.create_app calls it): this package never reads
configuration itself and never imports the web layer. Until then `metrics.X` raises a
`MetricsNotInitialised` error naming the fix.

Every per-request update goes through `recorder` (monitoring.recorder): written at once, or
summed and written every METRICS_FLUSH_MS in a gunicorn worker (`buffer_updates`).

Import this module only after `monitoring.multiproc.prepare_multiproc_dir` when running under
gunicorn: prometheus_client picks its multiprocess value store at import time.
"""
import time

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

from monitoring.recorder import BufferedRecorder, PeriodicFlusher, Recorder

LABELS = ("not_severe", "severe")  # index = predicted class
# The card's test metrics exported as model_reference_metric{metric}: every card has each of
# them for its random test split (both classes are always in it, so ROC-AUC is defined).
REFERENCE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "brier", "ece")

# The histograms' bucket edges this process's metrics were built with (None: not yet built).
_buckets = None

# Where the per-request updates go: written at once, unless this process is a gunicorn worker
# that called `buffer_updates`.
recorder = Recorder()
_flusher = None


class MetricsNotInitialised(AttributeError):
    """A metric was used before `init_metrics` built the metric objects."""


class MetricsConfigError(ValueError):
    """`init_metrics` was called again in this process with different bucket edges."""


# Feedback arrives from minutes to weeks after its prediction.
FEEDBACK_DELAY_BUCKETS = (60.0, 300.0, 900.0, 3600.0, 3 * 3600.0, 6 * 3600.0, 12 * 3600.0,
                          86400.0, 2 * 86400.0, 3 * 86400.0, 7 * 86400.0, 14 * 86400.0,
                          30 * 86400.0)
OUTCOMES = ("tp", "fp", "tn", "fn")


def init_metrics(*, inference_buckets, probability_buckets, batch_size_buckets) -> None:
    """Build every metric object of the service in this process (idempotent).

    prometheus_client allows one metric per name per process, so the first call fixes the
    bucket edges; a later call with the same edges (another app in the same process, as in
    tests) is a no-op, one with different edges is refused rather than silently ignored.

    Raises
    ------
    MetricsConfigError
        The metrics already exist with other bucket edges.
    """
    global _buckets
    wanted = tuple(tuple(float(edge) for edge in edges)
                   for edges in (inference_buckets, probability_buckets, batch_size_buckets))
    if _buckets is not None:
        if wanted != _buckets:
            raise MetricsConfigError(
                f"metrics already built in this process with buckets {_buckets}; "
                f"cannot rebuild them with {wanted}: use one bucket setting per process")
        return
    _define(*wanted)
    _buckets = wanted


def _define(inference_buckets, probability_buckets, batch_size_buckets) -> None:
    """Create the metric objects as module attributes (called once, by init_metrics)."""
    global HTTP_REQUESTS, INFERENCE_TIME, API_PREDICT, IN_FLIGHT, MODEL_INFO, PREDICTIONS
    global PROBABILITY, BATCH_SIZE, INPUT_REJECTED, INPUT_IMPUTED, FEATURE_BIN, REFERENCE_RATIO
    global FLUSH_ERRORS
    global EXPECTED_OUTCOME, FEEDBACK, FEEDBACK_REJECTED, FEEDBACK_DELAY, LOG_WRITTEN, LOG_DROPPED
    global REFERENCE_METRIC
    global _children
    # --- the user's sketch names (its dashboard queries must keep working) -------------------
    HTTP_REQUESTS = Counter(
        "http_requests_total", "HTTP responses by method, Flask endpoint (unmatched paths "
        "folded) and numeric status.", ["method", "endpoint", "status"])
    INFERENCE_TIME = Histogram(
        "inference_time_seconds", "Duration of the model call alone (one call per request).",
        buckets=inference_buckets)
    API_PREDICT = Counter(
        "api_predict_total", "Prediction requests (/predict, /predict/batch, V2 infer) by "
        "outcome: success or error. Records predicted: model_predictions_total.", ["outcome"])

    # --- HTTP in-flight (prometheus-flask-exporter provides the latency histogram) ----------
    IN_FLIGHT = Gauge(
        "flask_http_requests_in_flight", "HTTP requests being served right now.",
        multiprocess_mode="livesum")

    # --- the model ---------------------------------------------------------------------------
    MODEL_INFO = Gauge(
        "model_info", "The served model; value 1, metadata in labels.",
        ["name", "version", "trained_at", "source", "backend"], multiprocess_mode="max")
    PREDICTIONS = Counter(
        "model_predictions_total", "Records predicted, by predicted label.", ["label"])
    PROBABILITY = Histogram(
        "model_prediction_probability", "Predicted probability of a severe accident, "
        "P(severe).", buckets=probability_buckets)
    BATCH_SIZE = Histogram(
        "model_batch_size", "Records per prediction request (1 for /predict).",
        buckets=batch_size_buckets)
    INPUT_REJECTED = Counter(
        "model_input_rejected_total", "Validation failures by input field and reason slug.",
        ["field", "reason"])
    INPUT_IMPUTED = Counter(
        "model_input_imputed_total", "Input values sent as unknown (null, or BAAC's -1 where it "
        "is not a code) and imputed with the card's training fill value, by feature.",
        ["feature"])

    # --- input drift: served values counted into the training reference bins ----------------
    FEATURE_BIN = Counter(
        "model_feature_bin_total", "Served feature values per reference bin (bin = index "
        "from model.reference.assign_bins).", ["feature", "bin"])
    REFERENCE_RATIO = Gauge(
        "model_feature_reference_ratio", "Training share of each reference bin of a feature.",
        ["feature", "bin"], multiprocess_mode="max")
    # set in the process that loads the model (gunicorn's master, before forking): one writer
    REFERENCE_METRIC = Gauge(
        "model_reference_metric", "Each served model's test metrics from its card (held-out "
        "split, calibrated probability at the card's threshold): what training promised.",
        ["metric", "model_version"], multiprocess_mode="max")

    # --- model quality: labels that arrive later, and what the probabilities expect ----------
    EXPECTED_OUTCOME = Counter(
        "model_expected_outcome_total", "Expected confusion-matrix cells of the served "
        "predictions from their calibrated probability p (predicted severe: tp += p, "
        "fp += 1 - p; predicted not severe: fn += p, tn += 1 - p).",
        ["outcome", "model_version"])
    FEEDBACK = Counter(
        "model_feedback_total", "True outcomes received for served predictions (POST "
        "/feedback), each counted once, by confusion-matrix cell.", ["outcome", "model_version"])
    FEEDBACK_REJECTED = Counter(
        "model_feedback_rejected_total", "Feedback refused: invalid, unknown or purged "
        "prediction id, or a label conflicting with the recorded one.", ["reason"])
    FEEDBACK_DELAY = Histogram(
        "model_feedback_delay_seconds", "Time from a prediction to its feedback.",
        buckets=FEEDBACK_DELAY_BUCKETS)

    # --- the monitoring itself ---------------------------------------------------------------
    LOG_WRITTEN = Counter(
        "prediction_log_written_total", "Prediction-log rows written to the database.")
    LOG_DROPPED = Counter(
        "prediction_log_dropped_total", "Prediction-log rows dropped: the queue was full "
        "(queue_full) or the database refused the write (write_failed).", ["reason"])
    FLUSH_ERRORS = Counter(
        "metrics_flush_errors_total", "Failed writes of a worker's buffered metric updates "
        "or prediction-log rows (the rest of that flush is lost; later flushes go on).")
    _children = _Children()


_METRIC_NAMES = frozenset({"HTTP_REQUESTS", "INFERENCE_TIME", "API_PREDICT", "IN_FLIGHT",
                           "MODEL_INFO", "PREDICTIONS", "PROBABILITY", "BATCH_SIZE",
                           "INPUT_REJECTED", "INPUT_IMPUTED", "FEATURE_BIN", "REFERENCE_RATIO",
                           "FLUSH_ERRORS", "EXPECTED_OUTCOME", "FEEDBACK", "FEEDBACK_REJECTED",
                           "FEEDBACK_DELAY", "LOG_WRITTEN", "LOG_DROPPED", "REFERENCE_METRIC",
                           "_children"})


def __getattr__(name):
    # Only reached for names not (yet) defined: say why instead of a bare AttributeError.
    if name in _METRIC_NAMES:
        raise MetricsNotInitialised(
            f"monitoring.metrics.{name} does not exist yet: call monitoring.metrics."
            "init_metrics(...) first (accident_api.create_app does)")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Children:
    """The fixed-label children the per-request path increments, resolved once per process."""

    def __init__(self):
        self.success = API_PREDICT.labels(outcome="success")
        self.error = API_PREDICT.labels(outcome="error")
        self.not_severe = PREDICTIONS.labels(label=LABELS[0])
        self.severe = PREDICTIONS.labels(label=LABELS[1])


def buffer_updates(interval: float) -> None:
    """From now on, sum this process's per-request updates and write them every `interval` s.

    Called once per gunicorn worker (post_worker_init); `flush_updates` at its exit.
    """
    global recorder, _flusher
    if _flusher is None and interval > 0:
        recorder = BufferedRecorder()
        _flusher = PeriodicFlusher(recorder, interval, on_error=FLUSH_ERRORS.inc).start()


def flush_updates() -> None:
    """Write every pending update now and stop buffering (a worker about to exit)."""
    global recorder, _flusher
    if _flusher is not None:
        _flusher.stop()
        recorder, _flusher = Recorder(), None


class InferenceTimer:
    """Context manager timing the model call into inference_time_seconds."""

    def __enter__(self):
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc_info):
        recorder.observe(INFERENCE_TIME, time.perf_counter() - self._start)
        return False


def record_predictions(classes: np.ndarray, probabilities: np.ndarray) -> None:
    """Count one successful prediction request: its records' labels, probabilities, size."""
    n = int(classes.size)
    record = recorder
    record.observe(BATCH_SIZE, n)
    # one per request, like outcome="error": the two outcomes share a unit and can be divided
    record.inc(_children.success)
    severe = int(np.count_nonzero(classes))
    if severe:
        record.inc(_children.severe, severe)
    if n - severe:
        record.inc(_children.not_severe, n - severe)
    if n == 1:
        record.observe(PROBABILITY, float(probabilities[0]))
    else:
        record.observe_many(PROBABILITY, probabilities)


def record_failed_prediction() -> None:
    """Count a prediction request that produced no prediction (bad input, no model, fault)."""
    recorder.inc(_children.error)


def record_log_written(rows: int) -> None:
    """Count prediction-log rows written."""
    recorder.inc(LOG_WRITTEN, rows)


def record_log_dropped(reason: str, rows: int) -> None:
    """Count prediction-log rows dropped (queue_full, write_failed)."""
    recorder.inc(LOG_DROPPED.labels(reason=reason), rows)


def record_rejection(field: str, reason: str) -> None:
    """Count one validation failure; callers keep `field` to a bounded set of names."""
    recorder.inc(INPUT_REJECTED.labels(field=field, reason=reason))


def record_imputed(feature_names, imputed: np.ndarray) -> None:
    """Count the imputed values of one request: `imputed` is its (n, features) boolean mask,
    columns named by `feature_names`."""
    if not imputed.any():  # the common case: nothing was unknown
        return
    counts = imputed.sum(axis=0)
    for column in np.flatnonzero(counts).tolist():
        recorder.inc(INPUT_IMPUTED.labels(feature=feature_names[column]), int(counts[column]))


def set_model_info(name: str, version: str, trained_at: str, source: str, backend: str,
                   value: float = 1) -> None:
    """Export a model's identity as model_info{...} = 1 (served) or 0 (replaced)."""
    MODEL_INFO.labels(name=name, version=version, trained_at=trained_at, source=source,
                      backend=backend).set(value)


def set_reference_metrics(card: dict) -> None:
    """Export a model card's test metrics (REFERENCE_METRICS of ``card["metrics"]``) as
    model_reference_metric{metric, model_version}: a replaced model's stay, for the labels
    of its predictions that arrive later."""
    for name in REFERENCE_METRICS:
        REFERENCE_METRIC.labels(metric=name, model_version=card["version"]).set(
            float(card["metrics"][name]))
