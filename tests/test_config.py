"""Config: defaults, environment overrides, refusal of unusable values; serve flags over env."""
import argparse

import pytest

from accident_api.config import Config, ConfigError
from accident_api.cli import add_serve_command, serve_environment


def test_defaults_are_the_documented_ones():
    config = Config.from_env({})
    assert (config.MODEL_PATH, config.MODEL_BACKEND, config.HOST, config.PORT) == (
        "models", "onnx", "127.0.0.1", 8000)
    assert (config.METRICS_PORT, config.WEB_CONCURRENCY, config.MAX_BATCH_SIZE) == (9200, 2, 1000)
    assert config.MAX_CONTENT_LENGTH == 2 * 1024 * 1024
    assert config.PROMETHEUS_MULTIPROC_DIR is None
    assert config.INFERENCE_BUCKETS[0] == 0.0001 and config.INFERENCE_BUCKETS[-1] == 1.0
    assert config.PROBABILITY_BUCKETS[-1] == 1.0
    assert config.ACCESS_LOG is False  # gunicorn's default


def test_environment_overrides_each_setting():
    config = Config.from_env({
        "MODEL_PATH": "/m", "MODEL_BACKEND": "SKLEARN", "HOST": "0.0.0.0", "PORT": "8080",
        "METRICS_PORT": "9300", "WEB_CONCURRENCY": "4", "MAX_BATCH_SIZE": "10",
        "MAX_CONTENT_LENGTH": "4096", "LOG_LEVEL": "DEBUG", "PROMETHEUS_MULTIPROC_DIR": "/tmp/x",
        "INFERENCE_BUCKETS": "0.001, 0.01,1", "MAX_REQUESTS": "0", "ACCESS_LOG": "yes"})
    assert config.MODEL_PATH == "/m" and config.MODEL_BACKEND == "sklearn"
    assert (config.HOST, config.PORT, config.METRICS_PORT) == ("0.0.0.0", 8080, 9300)
    assert (config.WEB_CONCURRENCY, config.MAX_BATCH_SIZE) == (4, 10)
    assert config.MAX_CONTENT_LENGTH == 4096
    assert config.LOG_LEVEL == "debug" and config.PROMETHEUS_MULTIPROC_DIR == "/tmp/x"
    assert config.INFERENCE_BUCKETS == (0.001, 0.01, 1.0) and config.MAX_REQUESTS == 0
    assert config.ACCESS_LOG is True


@pytest.mark.parametrize("env, fragment", [
    ({"PORT": "eighty"}, "PORT='eighty' is not an integer"),
    ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY='0' must be >= 1"),
    ({"MAX_BATCH_SIZE": "-5"}, "MAX_BATCH_SIZE='-5' must be >= 1"),
    ({"MODEL_BACKEND": "torch"}, "MODEL_BACKEND='torch' must be one of onnx, sklearn"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL='loud'"),
    ({"INFERENCE_BUCKETS": "0.1,a"}, "not a comma-separated list of numbers"),
    ({"PROBABILITY_BUCKETS": "0.5,0.2"}, "must be strictly increasing"),
    ({"ACCESS_LOG": "maybe"}, "ACCESS_LOG='maybe' must be 1/true/yes/on or 0/false/no/off"),
])
def test_unusable_values_are_refused_with_the_variable_named(env, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        Config.from_env(env)


def test_empty_values_mean_default():
    assert Config.from_env({"PORT": "", "MODEL_PATH": ""}) == Config()


def _serve_args(argv):
    parser = argparse.ArgumentParser()
    add_serve_command(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])


def test_serve_flags_override_the_environment():
    env = {"MODEL_PATH": "/env/model", "PORT": "1111", "METRICS_PORT": "2222", "HOST": "0.0.0.0",
           "WEB_CONCURRENCY": "7", "LOG_LEVEL": "debug"}
    args = _serve_args(["--model", "/flag/model", "--port", "3333", "--metrics-port", "4444",
                        "--host", "127.0.0.2", "--workers", "3"])
    config = Config.from_env(serve_environment(args, env))
    assert (config.MODEL_PATH, config.PORT, config.METRICS_PORT, config.HOST,
            config.WEB_CONCURRENCY, config.LOG_LEVEL) == ("/flag/model", 3333, 4444,
                                                          "127.0.0.2", 3, "debug")


def test_serve_without_flags_keeps_environment_then_defaults():
    assert Config.from_env(serve_environment(_serve_args([]), {"PORT": "1111"})) == Config(
        PORT=1111)


def test_the_default_metrics_directory_is_one_per_port():
    assert Config(PORT=8001).metrics_dir().endswith("accident-api-metrics-8001")
    assert Config(PROMETHEUS_MULTIPROC_DIR="/run/m").metrics_dir() == "/run/m"
