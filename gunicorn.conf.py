"""gunicorn settings and hooks: `gunicorn -c gunicorn.conf.py wsgi:app`, configured by environment.

The settings themselves live in accident_api.server (shared with `accident-api serve`): sync
workers, preload_app (model loaded once in the master), graceful timeout, max_requests with
jitter, access log on stdout (ACCESS_LOG; lines written by accident_api.access_log); hooks
`on_starting` (no model -> one line, exit 1), `when_ready` (sidecar metrics exporter on
METRICS_PORT) and `child_exit` (dead worker's live gauges dropped).
"""
import dataclasses
import sys

from accident_api.config import Config, ConfigError
from accident_api.server import gunicorn_options
from monitoring.exporter import prepare_multiproc_dir

try:
    _config = Config.from_env()
except ConfigError as error:
    print(f"accident-api cannot start: {error}", file=sys.stderr)
    sys.exit(1)

# Before the app (and prometheus_client) is imported: the workers' metric files go there.
_temporary_metrics_dir = _config.PROMETHEUS_MULTIPROC_DIR is None
_config = dataclasses.replace(
    _config, PROMETHEUS_MULTIPROC_DIR=prepare_multiproc_dir(_config.PROMETHEUS_MULTIPROC_DIR))
globals().update(gunicorn_options(_config, temporary_metrics_dir=_temporary_metrics_dir))
