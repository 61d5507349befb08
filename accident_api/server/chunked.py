"""WSGI middleware: a body sent without Content-Length (chunked) is held to MAX_CONTENT_LENGTH.

werkzeug enforces MAX_CONTENT_LENGTH on a chunked body by *truncating* the stream at the limit
(`get_input_stream` wraps it in a LimitedStream of that size,
https://github.com/pallets/werkzeug/pull/1126, discussed in
https://github.com/pallets/flask/issues/2229), so an oversized body reaches the JSON parser
cut short and the client gets a misleading 400. Here the body is buffered up to the limit +
1 byte and handed on with a Content-Length, so werkzeug answers 413 exactly as for a declared
oversize body.
"""
import io

DRAIN_CHUNK = 64 * 1024


class ChunkedBodyLimit:
    """Give a body sent without Content-Length one, read at most MAX_CONTENT_LENGTH + 1 bytes."""

    def __init__(self, config, wsgi_app):
        self.config = config  # read per request: tests change it after create_app
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
