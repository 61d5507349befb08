"""Shared pytest fixtures; each area keeps its fixtures in tests/fixtures/<area>.py."""

pytest_plugins = [
    "tests.fixtures.model",
    "tests.fixtures.service",
    "tests.fixtures.observability",
    "tests.fixtures.stack",
    "tests.fixtures.reliability",
    "tests.fixtures.browser",
]
