"""Where one `/predict` request's time goes, stage by stage, with the app's real components.

    python bench/breakdown.py [--model DIR] [--backend onnx|sklearn] [--repeat 2000]

Each stage is the very function the service calls, run `--repeat` times on the seed record,
timed one call at a time; the median per stage is printed in microseconds next to the whole
request through Flask's test client (which adds routing, hooks and werkzeug's request and
response objects on top of the stages). Metrics run in prometheus_client's multiprocess mode
(mmap'd files in a temporary PROMETHEUS_MULTIPROC_DIR), as under gunicorn.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

if __package__ in (None, ""):  # `python bench/breakdown.py`: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# prometheus_client picks its value store at first import: multiprocess, as in production.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bench-prom-"))

from bench.payloads import record_body  # noqa: E402


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path,
                        default=Path(tempfile.gettempdir()) / "accident-api-bench" / "model",
                        help="model directory (default: the one bench/run.py trains)")
    parser.add_argument("--backend", choices=("onnx", "sklearn"), default="onnx")
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--json", type=Path, help="also write the medians here")
    return parser.parse_args(argv)


def time_calls(function, repeat):
    """Median and p99 wall time of `function()` in µs over `repeat` calls (after 50 warm-ups)."""
    for _ in range(min(50, repeat)):
        function()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        function()
        samples.append(time.perf_counter_ns() - start)
    samples.sort()
    return {"median_us": median(samples) / 1000, "p99_us": samples[int(0.99 * len(samples))] / 1000}


def stages(app):
    """(name, zero-argument callable) for each stage of one request, in request order."""
    from accident_api import MODEL_EXTENSION
    from accident_api.inference import prediction_items
    from accident_api.instrumentation import METRICS_EXTENSION
    from accident_api.rows import records_to_rows
    from accident_api.schemas import AccidentRecordSchema, PredictionSchema
    from monitoring import metrics

    service = app.extensions[MODEL_EXTENSION]
    body = record_body()
    parsed = app.json.loads(body)
    record = AccidentRecordSchema().load(parsed)
    rows = records_to_rows([record])
    prediction = service.predictor.predict(rows)
    schema_in, schema_out = AccidentRecordSchema(), PredictionSchema()

    # the label children RequestMetrics' hook writes for a 200 from /predict
    http = app.extensions[METRICS_EXTENSION]._series_for("POST", "predictions.predict",
                                                         "/predict", "200")

    def record_metrics():
        # What the service records around one prediction, hooks included.
        record = metrics.recorder
        record.inc(metrics.IN_FLIGHT, 1)
        with metrics.InferenceTimer():
            pass
        metrics.record_predictions(prediction.classes, prediction.probabilities)
        record.observe_rows(service.drift, rows)
        # as RequestMetrics' hook writes them
        record.observe(http.duration, 0.003)
        record.inc(http.total)
        record.inc(http.http_requests)
        record.inc(metrics.IN_FLIGHT, -1)

    def serialise():
        item = prediction_items(prediction, service.predictor.version)[0]
        return app.json.dumps(schema_out.dump(item))

    return [
        ("parse JSON (app.json.loads)", lambda: app.json.loads(body)),
        ("validate (AccidentRecordSchema.load)", lambda: schema_in.load(parsed)),
        ("features (records_to_rows)", lambda: records_to_rows([record])),
        (f"model call (Predictor.predict, {service.predictor.backend})",
         lambda: service.predictor.predict(rows)),
        ("metrics (timer, prediction, drift bins, HTTP latency and counters, in-flight)",
         record_metrics),
        ("serialise (prediction_items + PredictionSchema.dump + dumps)", serialise),
    ]


def whole_request(app):
    """One full POST /predict through Flask's test client."""
    client, body = app.test_client(), record_body()

    def post():
        reply = client.post("/predict", data=body, content_type="application/json")
        assert reply.status_code == 200, reply.get_data(as_text=True)
    return "whole request (Flask test client, all hooks)", post


def ceiling_request(repeat=2000):
    """The same POST through the ceiling app's test client: Flask's own floor."""
    from bench.ceiling_app import app

    client, body = app.test_client(), record_body()
    return time_calls(lambda: client.post("/predict", data=body,
                                          content_type="application/json"), repeat)


def main(argv=None):
    """Print the per-stage medians (µs) and their share of the whole request."""
    options = parse_args(argv)
    from accident_api import create_app

    app = create_app({"TESTING": True, "MODEL_PATH": str(options.model),
                      "MODEL_BACKEND": options.backend})
    from monitoring import metrics

    # as in a gunicorn worker (post_worker_init): updates summed, written by a thread
    metrics.buffer_updates(app.config["METRICS_FLUSH_MS"] / 1000)
    results = [(name, time_calls(fn, options.repeat)) for name, fn in stages(app)]
    name, post = whole_request(app)
    total = time_calls(post, options.repeat)
    print(f"one /predict, {options.backend} backend, median of {options.repeat} calls (µs):")
    for stage, figures in results:
        share = 100 * figures["median_us"] / total["median_us"]
        print(f"  {figures['median_us']:9.1f}  {share:5.1f}%  {stage}")
    staged = sum(figures["median_us"] for _, figures in results)
    print(f"  {staged:9.1f}  {100 * staged / total['median_us']:5.1f}%  sum of the stages")
    print(f"  {total['median_us']:9.1f}  100.0%  {name}")
    metrics.flush_updates()
    ceiling = ceiling_request()
    print(f"  {ceiling['median_us']:9.1f}  {100 * ceiling['median_us'] / total['median_us']:5.1f}%"
          "  the ceiling app's whole request (parse + constant answer), for scale")
    if options.json:
        options.json.write_text(json.dumps({"backend": options.backend, "repeat": options.repeat,
                                            "stages": dict(results), "whole": total,
                                            "ceiling_whole": ceiling}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
