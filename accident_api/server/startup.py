"""Start-up shared by `gunicorn -c gunicorn.conf.py` and `accident-api serve` (which runs it)."""
import dataclasses
import sys

from accident_api.config import Config, ConfigError
from monitoring.multiproc import prepare_multiproc_dir


def prepared_config(environ=None) -> Config:
    """The service's Config from the environment, its multiprocess metrics directory ready.

    A setting the service cannot use stops the start-up with one line on stderr (exit 1).
    Call it before anything imports prometheus_client: the directory is where the workers'
    metric files go, and the library reads it once.
    """
    try:
        config = Config.from_env(environ)
    except ConfigError as error:
        print(f"accident-api cannot start: {error}", file=sys.stderr)
        sys.exit(1)
    directory = prepare_multiproc_dir(config.metrics_dir())
    return dataclasses.replace(config, PROMETHEUS_MULTIPROC_DIR=directory)
