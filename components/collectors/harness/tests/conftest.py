"""Fixtures of the harness tests: anyio on asyncio, real JetStream from the nats-server binary."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # harness_tail, the tests' source

from tapio_testing.engine import EngineChoice, choose_engine
from tapio_testing.pytest_plugin import jetstream  # noqa: F401


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def jetstream_engine() -> EngineChoice:
    return choose_engine("binary")
