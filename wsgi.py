"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app` (settings from the environment)."""
from accident_api import create_app

app = create_app()
