"""Fixtures of the admin tests: a real nats-server binary per test (the shared plugin's `jetstream`)."""

from __future__ import annotations

import pytest

from tapio_testing.engine import EngineChoice, choose_engine
from tapio_testing.pytest_plugin import jetstream  # noqa: F401


@pytest.fixture
def jetstream_engine() -> EngineChoice:
    return choose_engine("binary")
