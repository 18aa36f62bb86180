"""Fixtures of the publisher tests: realistic events (the public scenarios), anyio on asyncio."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from google.protobuf import json_format

from tapio.events.v1 import events_pb2


def scenarios_dir() -> Path:
    """tests/scenarios/public of the repository (also under Bazel, where it is a data dependency)."""
    for base in (Path(os.environ.get("TEST_SRCDIR", "")) / os.environ.get("TEST_WORKSPACE", ""), Path.cwd()):
        cand = base / "tests" / "scenarios" / "public"
        if cand.is_dir():
            return cand
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent / "tests" / "scenarios" / "public"
        if cand.is_dir():
            return cand
    raise FileNotFoundError("tests/scenarios/public not found")


def scenario_events() -> list[events_pb2.Event]:
    out = []
    for path in sorted(scenarios_dir().glob("*/events.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json_format.Parse(line, events_pb2.Event()))
    return out


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
