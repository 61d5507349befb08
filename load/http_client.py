"""HTTP/1.1 over asyncio for the load engine: one connection per worker, kept while the
server keeps it alive (gunicorn's sync workers close it after every response).

Why not requests (the project's HTTP client everywhere else): a thread and urllib3's
per-request Python work cost so much CPU that on a 2-core machine the client, not the
server, set the ceiling. Why not aiohttp: its session, connector and response objects cost
more per request than the whole of this module, and the load engine needs nothing of them
but one connection per worker. Responses are parsed by httptools (llhttp, Node.js's
parser); this module only writes the request bytes and hands the parser what arrives.
Responses must be framed (Content-Length or chunked), as every HTTP/1.1 server sends them:
a connection closed before the end of a response is a reset, never a short answer.
"""
from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

USER_AGENT = "accident-api-load"


class ServerDisconnected(ConnectionResetError):
    """The server closed the connection before the whole response had arrived."""


@dataclass
class Endpoint:
    """Where requests go: the base URL split once, its addresses resolved once."""

    host: str
    port: int
    prefix: str               # path of the base URL, put before every request path
    host_header: str
    tls: ssl.SSLContext | None
    addresses: list | None = None   # getaddrinfo results, resolved at the first connect

    @classmethod
    def parse(cls, base_url: str) -> "Endpoint":
        """An Endpoint for ``http://host[:port][/prefix]`` (or https)."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http:// or https:// URL")
        tls = ssl.create_default_context() if parts.scheme == "https" else None
        port = parts.port or (443 if tls else 80)
        return cls(parts.hostname, port, parts.path.rstrip("/"), parts.netloc, tls)

    def encode(self, method: str, path: str, body: bytes | None, headers: dict) -> bytes:
        """The request's bytes on the wire."""
        lines = [f"{method} {self.prefix}{path} HTTP/1.1", f"Host: {self.host_header}",
                 f"User-Agent: {USER_AGENT}", "Accept: */*"]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        for name, value in headers.items():
            if any(char in f"{name}{value}" for char in "\r\n"):
                raise ValueError(f"header {name!r}: line breaks are not allowed")
            lines.append(f"{name}: {value}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")

    async def connect(self) -> "Connection":
        """A new connection; tries each resolved address, the last one that worked first."""
        loop = asyncio.get_running_loop()
        if not self.addresses:
            self.addresses = await loop.getaddrinfo(self.host, self.port,
                                                    type=socket.SOCK_STREAM)
        error = None
        for family, kind, proto, _, address in list(self.addresses):
            try:
                _, connection = await loop.create_connection(
                    Connection, sock=None, host=address[0], port=address[1], family=family,
                    proto=proto, ssl=self.tls, server_hostname=self.host if self.tls else None)
            except OSError as exc:
                error = exc
                continue
            if address != self.addresses[0][4]:
                self.addresses.sort(key=lambda info: info[4] != address)
            return connection
        raise error


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future | None = None
        self.chunks: list[bytes] = []
        self.want_body = False
        self.closed = False

    @property
    def reusable(self) -> bool:
        """True while the server keeps the connection open for another request."""
        return not self.closed and not self.transport.is_closing()

    def request(self, data: bytes, want_body: bool) -> asyncio.Future:
        """Send one request; the future gives (status, body: bytes, empty unless wanted)."""
        self.chunks, self.want_body = [], want_body
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def close(self) -> None:
        """Close the connection (returns None, for ``connection = connection.close()``)."""
        self.closed = True
        self.transport.close()

    # asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport      # TCP_NODELAY is the event loop's default

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._finish(exc=exc)
            self.close()

    def eof_received(self):
        self.closed = True       # returning None lets the transport close itself

    def connection_lost(self, exc) -> None:
        self.closed = True
        self._finish(exc=exc or ServerDisconnected("connection closed before the response"))

    # httptools callbacks
    def on_body(self, chunk: bytes) -> None:
        if self.want_body:
            self.chunks.append(chunk)

    def on_message_complete(self) -> None:
        if not self.parser.should_keep_alive():
            self.close()
        self._finish(result=(self.parser.get_status_code(), b"".join(self.chunks)))

    def _finish(self, result=None, exc=None) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        if exc is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(result)
