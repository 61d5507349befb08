"""gunicorn's programmatic application for `accident-api serve` (settings as gunicorn.conf.py)."""
import dataclasses

from gunicorn.app.base import BaseApplication

from accident_api.config import Config
from accident_api.server import gunicorn_options


class ServiceApplication(BaseApplication):
    """gunicorn serving `create_app(config)`; no command line or config file is read."""

    def __init__(self, config: Config, temporary_metrics_dir: bool = False):
        self.config = config
        self.temporary_metrics_dir = temporary_metrics_dir
        super().__init__()

    def load_config(self):
        options = gunicorn_options(self.config, self.temporary_metrics_dir)
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self):
        from accident_api import create_app

        return create_app(dataclasses.asdict(self.config))
