"""Name what happened to a request that got no HTTP response.

The reliability tests and the soak must tell a connection the server never accepted
(``refused``: nothing was accepted, so nothing was lost) from one it accepted and then
dropped (``reset``: an accepted request lost), and both from a ``timeout``.
"""
from __future__ import annotations

import errno

REFUSED, RESET, TIMEOUT, OTHER = "refused", "reset", "timeout", "other"
FAILURES = (REFUSED, RESET, TIMEOUT, OTHER)

_RESET_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}


def classify(exc: BaseException) -> str:
    """Map a load engine error (load.http_client, asyncio, the socket) to refused | reset |
    timeout | other; walks the cause chain (TLS and the event loop may wrap the socket's)."""
    seen, stack = set(), [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, TimeoutError):
            return TIMEOUT
        if isinstance(current, ConnectionRefusedError) or \
                getattr(current, "errno", None) == errno.ECONNREFUSED:
            return REFUSED
        if isinstance(current, (ConnectionResetError, BrokenPipeError,
                                ConnectionAbortedError)) or \
                getattr(current, "errno", None) in _RESET_ERRNOS:
            return RESET
        stack.extend([current.__cause__, current.__context__])
    return OTHER
