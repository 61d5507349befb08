"""load.outcomes: what a request without an answer is called."""
import asyncio
import errno
import ssl

import pytest

from load.http_client import ServerDisconnected
from load.outcomes import OTHER, REFUSED, RESET, TIMEOUT, classify


def _wrapped(inner: BaseException, outer: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except BaseException as exc:
        return exc


@pytest.mark.parametrize("exc, label", [
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"), REFUSED),
    (OSError(errno.ECONNREFUSED, "refused"), REFUSED),
    (ServerDisconnected("connection closed before the response"), RESET),
    (ConnectionResetError(errno.ECONNRESET, "reset by peer"), RESET),
    (BrokenPipeError(errno.EPIPE, "broken pipe"), RESET),
    (TimeoutError(), TIMEOUT),
    (asyncio.TimeoutError(), TIMEOUT),
    (OSError(errno.EHOSTUNREACH, "no route to host"), OTHER),
    (ValueError("header 'X': line breaks are not allowed"), OTHER),
    (_wrapped(ConnectionResetError(), ssl.SSLError("TLS failed")), RESET),
])
def test_each_failure_has_its_name(exc, label):
    assert classify(exc) == label
