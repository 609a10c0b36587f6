"""Fixture modules by concern live in tests/fixtures/; they are registered here."""

pytest_plugins = [
    "tests.fixtures.db",
    "tests.fixtures.api",
    "tests.fixtures.engines",
    "tests.fixtures.triton_server",
]
