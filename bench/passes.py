"""One round for one server: warm-up, closed-loop wrk pass (memory sampled under load),
open-model passes (the load engine in-process, bench/openloop.py, then load/run.py) and a
1,000-record batch pass."""
import time
from pathlib import Path

from bench import memory, openload, openloop, payloads, wrk


def measure(config, server, options, scripts, work_dir):
    """Run every pass against a started server; return a dict of results per pass."""
    result = {}
    if options.warmup:
        wrk.finish(wrk.start(server.url + "/predict", scripts["record"], options.warmup),
                   options.warmup)
    result["wrk"], result["memory"] = _wrk_with_memory(server, scripts["record"],
                                                       options.duration, options.connections)
    rate = options.seed_rate if config.slow else options.rate
    if options.open_duration:
        result["openloop"] = openloop.run(server.port, "/predict", payloads.record_body(),
                                          rate, options.open_duration)
    if openload.available() and options.open_duration:
        tag = f"{config.key}-{server.port}"
        result["open"] = openload.run(server.url, rate, options.open_duration,
                                      scripts["records_file"],
                                      Path(work_dir) / f"open-{tag}.json",
                                      Path(work_dir) / f"open-{tag}.log")
    if config.batch and options.batch_duration:
        batch = wrk.finish(wrk.start(server.url + "/predict/batch", scripts["batch"],
                                     options.batch_duration, options.batch_connections),
                           options.batch_duration)
        batch["rows_per_s"] = batch["rps"] * options.batch_size
        result["batch"] = batch
    return result


def _wrk_with_memory(server, script, duration, connections):
    """The max-throughput pass; the server's memory is read halfway through, under load."""
    cpu_before = memory.tree_cpu_seconds(server.process.pid)
    process = wrk.start(server.url + "/predict", script, duration, connections)
    time.sleep(duration / 2)
    sample = memory.tree_memory(server.process.pid)
    result = wrk.finish(process, duration)
    cpu = memory.tree_cpu_seconds(server.process.pid) - cpu_before
    result["cpu_ms_per_request"] = 1000 * cpu / result["requests"] if result["requests"] else None
    return result, sample
