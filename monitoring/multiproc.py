"""The multiprocess metrics directory, prepared before anything imports prometheus_client.

prometheus_client chooses its multiprocess value store when it is first imported, from the
PROMETHEUS_MULTIPROC_DIR environment variable, so the directory must be ready (and the
variable set) first: gunicorn.conf.py calls `prepare_multiproc_dir` through
accident_api.server.startup before it imports the hooks. This module imports nothing of
prometheus_client. The directory itself comes from Config; os.environ is written only because
the library reads the variable (in every worker, when a metric is first written).
"""
import os
import sys
from pathlib import Path

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"


class MultiprocessSetupError(RuntimeError):
    """prometheus_client was imported before its multiprocess directory was set."""


def prepare_multiproc_dir(path: str) -> str:
    """Point prometheus_client at the directory `path`, created if needed and wiped.

    Only prometheus_client's `*.db` metric files are removed, so a mistyped path never costs
    anyone their files.
    When prometheus_client is already imported in this process (gunicorn re-reading its config
    on SIGHUP) the live directory is kept as is: wiping it would make counters go backwards.

    Returns
    -------
    str
        The directory in use.
    """
    if "prometheus_client" in sys.modules:
        # the imported library is bound to the directory in its environment variable
        current = os.environ.get(ENV_VAR)
        if current:
            return current
        raise MultiprocessSetupError(
            "prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set: "
            "prepare the directory first (gunicorn.conf.py does)")
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    # prometheus_client reads the variable itself (no API takes the path): the one place
    # that sets it. The workers, forked from this process, inherit it.
    os.environ[ENV_VAR] = str(directory)
    return str(directory)
