"""WSGI middleware that runs before Flask: bounded method labels, chunked bodies held to the limit.

Both problems sit below Flask's routing, so they are fixed below it:

- gunicorn accepts any upper-case token as a method. Each one reaching Flask would become a new
  `method` label value in http_requests_total and prometheus-flask-exporter's metrics (an
  unbounded label set a client controls). Methods outside `KNOWN_METHODS` are answered here
  with a JSON 405 and counted once as method="other".
- werkzeug enforces MAX_CONTENT_LENGTH on a body without Content-Length (Transfer-Encoding:
  chunked) by *truncating* it, so an oversized body reaches the JSON parser cut short and the
  client gets a misleading 400. The body is buffered here up to the limit + 1 byte and handed
  on with a Content-Length, so werkzeug answers 413 exactly as for a declared oversize body.
"""
import io
import json

from flask import Flask

from accident_api.errors import is_v2_path
from monitoring import metrics

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
METHOD_MESSAGE = ("HTTP method not supported by this server: use GET, HEAD, POST, PUT, PATCH, "
                  "DELETE or OPTIONS.")
DRAIN_CHUNK = 64 * 1024


class KnownMethodsOnly:
    """Answer a method outside KNOWN_METHODS with a JSON 405 before Flask sees it."""

    def __init__(self, app: Flask, wsgi_app):
        self.url_map = app.url_map
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD", "") in KNOWN_METHODS:
            return self.wsgi_app(environ, start_response)
        # one fixed label value whatever the client sent: the label set stays bounded
        metrics.count_http_response("other", "unmatched", 405)
        path = environ.get("PATH_INFO", "")
        if is_v2_path(path):  # the protocol's error object
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


class ChunkedBodyLimit:
    """Give a body sent without Content-Length one, read at most MAX_CONTENT_LENGTH + 1 bytes."""

    def __init__(self, app: Flask, wsgi_app):
        self.config = app.config  # read per request: tests change it after create_app
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        limit = self.config.get("MAX_CONTENT_LENGTH")
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        # only servers that terminate the stream (gunicorn) make reading to its end safe
        if (limit is not None and chunked and not environ.get("CONTENT_LENGTH")
                and environ.get("wsgi.input_terminated")):
            stream = environ["wsgi.input"]
            body = stream.read(limit + 1)
            if len(body) > limit:
                _drain(stream, limit)
            # the body is now de-chunked and of known length (limit + 1 when over, so werkzeug
            # raises RequestEntityTooLarge on reading it); werkzeug ignores Content-Length
            # while Transfer-Encoding says chunked, hence the pop
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING")
        return self.wsgi_app(environ, start_response)


def _drain(stream, budget: int) -> None:
    """Read and drop up to `budget` more bytes of an oversized body.

    A socket closed with unread data resets the connection, and the client may then never
    read the 413; a bounded drain lets moderately oversized bodies get their answer while a
    client streaming without end still cannot hold the worker.
    """
    while budget > 0 and (chunk := stream.read(min(DRAIN_CHUNK, budget))):
        budget -= len(chunk)


def install(app: Flask) -> None:
    """Wrap `app.wsgi_app`: the method check first, so a refused method reads no body."""
    app.wsgi_app = KnownMethodsOnly(app, ChunkedBodyLimit(app, app.wsgi_app))
