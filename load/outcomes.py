"""Name what happened to a request that got no HTTP response.

The reliability tests and the soak must tell a connection the server never accepted
(``refused``: nothing was accepted, so nothing was lost) from one it accepted and then
dropped (``reset``: an accepted request lost), and both from a ``timeout``.
"""
from __future__ import annotations

import errno

import requests

REFUSED, RESET, TIMEOUT, OTHER = "refused", "reset", "timeout", "other"
FAILURES = (REFUSED, RESET, TIMEOUT, OTHER)


def classify(exc: BaseException) -> str:
    """Map a requests exception to refused | reset | timeout | other (walks the cause chain:
    urllib3 wraps the socket error two or three levels deep)."""
    if isinstance(exc, requests.Timeout):
        return TIMEOUT
    seen, stack = set(), [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or \
                getattr(current, "errno", None) == errno.ECONNREFUSED:
            return REFUSED
        if type(current).__name__ == "NewConnectionError" and "refused" in str(current).lower():
            return REFUSED
        if isinstance(current, (ConnectionResetError, BrokenPipeError)) or \
                type(current).__name__ in ("RemoteDisconnected", "ProtocolError"):
            return RESET
        stack.extend([current.__cause__, current.__context__])
        stack.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        stack.append(getattr(current, "reason", None))
    return OTHER
