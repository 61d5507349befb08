"""gunicorn settings for the ceiling app: 2 sync workers, no access log, nothing else.

Passed explicitly (`-c python:bench.ceiling_gunicorn`) because gunicorn otherwise loads the
service's ./gunicorn.conf.py, whose hooks expect the real app.
"""
workers = 2
worker_class = "sync"
