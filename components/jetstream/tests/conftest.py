"""Fixtures of the publisher tests: realistic events (the public scenarios), anyio on asyncio."""

from __future__ import annotations

import pytest

from tapio.events.v1 import events_pb2
from tapio_common.scenarios import all_events


def scenario_events() -> list[events_pb2.Event]:
    return all_events()


_CACHE: list[events_pb2.Event] = []


@pytest.fixture
def events() -> list[events_pb2.Event]:
    """The 478 events of the public scenarios (fresh copies: tests may change them)."""
    if not _CACHE:
        _CACHE.extend(scenario_events())
    out = []
    for ev in _CACHE:
        copy = events_pb2.Event()
        copy.CopyFrom(ev)
        out.append(copy)
    return out


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# Real JetStream from the shared plugin (`.url`, `.kill()`, `.restart()`); these component tests
# run on the nats-server binary, as `bazel test` does everywhere (tests/integration covers containers).
from tapio_testing.engine import EngineChoice, choose_engine  # noqa: E402
from tapio_testing.pytest_plugin import jetstream  # noqa: E402, F401


@pytest.fixture
def jetstream_engine() -> EngineChoice:
    return choose_engine("binary")
