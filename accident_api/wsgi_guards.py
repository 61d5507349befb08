"""WSGI middleware that runs before Flask: bounded method labels.

- gunicorn accepts any upper-case token as a method. Each one reaching Flask would become a new
  `method` label value in http_requests_total and prometheus-flask-exporter's metrics (an
  unbounded label set a client controls). Methods outside `KNOWN_METHODS` are answered here
  with a JSON 405 and counted once as method="other".
"""
import json

from flask import Flask

from monitoring import metrics

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
METHOD_MESSAGE = ("HTTP method not supported by this server: use GET, HEAD, POST, PUT, PATCH, "
                  "DELETE or OPTIONS.")


class KnownMethodsOnly:
    """Answer a method outside KNOWN_METHODS with a JSON 405 before Flask sees it."""

    def __init__(self, app: Flask, wsgi_app):
        self.url_map = app.url_map
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD", "") in KNOWN_METHODS:
            return self.wsgi_app(environ, start_response)
        # one fixed label value whatever the client sent: the label set stays bounded
        metrics.HTTP_REQUESTS.labels(method="other", endpoint="unmatched", status="405").inc()
        path = environ.get("PATH_INFO", "")
        if path == "/v2" or path.startswith("/v2/"):  # the protocol's error object
            payload = {"error": METHOD_MESSAGE}
        else:  # flask-smorest's format, as for every other error (accident_api.errors)
            payload = {"code": 405, "status": "Method Not Allowed", "message": METHOD_MESSAGE}
        body = json.dumps(payload).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        allowed = self.url_map.bind_to_environ(environ).allowed_methods(path)
        if allowed:
            headers.append(("Allow", ", ".join(sorted(allowed))))
        start_response("405 METHOD NOT ALLOWED", headers)
        return [body]


def install(app: Flask) -> None:
    """Wrap `app.wsgi_app`."""
    app.wsgi_app = KnownMethodsOnly(app, app.wsgi_app)
