"""Fixtures shared by the component test suites that run on a real nats-server binary: realistic
events (fresh copies of the public scenarios), anyio on asyncio, and `jetstream` on the binary
engine (tests/integration covers containers). A suite's conftest imports them by name."""

from __future__ import annotations

import pytest

from tapio.events.v1 import events_pb2
from tapio_common.scenarios import all_events
from tapio_testing.engine import EngineChoice, choose_engine
from tapio_testing.pytest_plugin import jetstream

__all__ = ["anyio_backend", "events", "jetstream", "jetstream_engine"]

_CACHE: list[events_pb2.Event] = []


@pytest.fixture
def events() -> list[events_pb2.Event]:
    """The events of the public scenarios (fresh copies: tests may change them)."""
    if not _CACHE:
        _CACHE.extend(all_events())
    out = []
    for ev in _CACHE:
        copy = events_pb2.Event()
        copy.CopyFrom(ev)
        out.append(copy)
    return out


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def jetstream_engine() -> EngineChoice:
    return choose_engine("binary")
