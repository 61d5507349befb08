"""Shared pytest fixtures; each area keeps its fixtures in tests/fixtures/<area>.py."""
import signal

# A shell without job control (a CI script, `make test &`) starts its background commands
# with SIGINT ignored, and an ignored signal stays ignored through every fork and exec: the
# servers and scripts the tests start would never see the Ctrl-C (SIGINT) the tests send
# them. A handler, unlike an ignore, is reset to the default at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

pytest_plugins = [
    "tests.fixtures.model",
    "tests.fixtures.service",
    "tests.fixtures.observability",
    "tests.fixtures.stack",
    "tests.fixtures.compose",
    "tests.fixtures.reliability",
    "tests.fixtures.database",
    "tests.fixtures.proxy",
    "tests.fixtures.browser",
]
