"""Integration suites run against real JetStream; the fixtures come from tapio_common's pytest plugin."""

from __future__ import annotations

import pytest

PLUGIN = "tapio_testing.pytest_plugin"


def pytest_configure(config: pytest.Config) -> None:
    # Rather than `pytest_plugins`, which pytest refuses in a conftest below the first directory
    # given (e.g. `pytest tests`): registers the plugin however this suite is reached.
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
