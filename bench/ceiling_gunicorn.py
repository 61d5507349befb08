"""gunicorn settings for the ceiling app: 2 sync workers and the service's access-log setting.

Passed explicitly (`-c python:bench.ceiling_gunicorn`) because gunicorn otherwise loads the
service's ./gunicorn.conf.py, whose hooks expect the real app. ACCESS_LOG is read through the
service's own Config, so the ceiling logs exactly when the service under test does.
"""
from accident_api.config import Config

workers = 2
worker_class = "sync"
accesslog = "-" if Config.from_env().ACCESS_LOG else None
