"""The README examples run against real JetStream: the fixtures of the tapio_testing plugin."""

from __future__ import annotations

import pytest

PLUGIN = "tapio_testing.pytest_plugin"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)
