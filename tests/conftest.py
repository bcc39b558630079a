"""Shared fixtures live in tests/fixtures/*; each module is owned by one concern."""

pytest_plugins = [
    "tests.fixtures.servers",
    "tests.fixtures.cluster",
]
