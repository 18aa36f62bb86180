"""Fixtures of the Kubernetes collector tests: the test API server, real JetStream (binary), and
collectors run in-process through the harness."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tapio_testing.engine import EngineChoice, choose_engine
from tapio_testing.k8s_api import K8sApiServer
from tapio_testing.pytest_plugin import jetstream  # noqa: F401

sys.path.insert(0, str(Path(__file__).parent))  # k8s_helpers


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def jetstream_engine() -> EngineChoice:
    return choose_engine("binary")


@pytest.fixture
def k8s_api() -> Iterator[K8sApiServer]:
    api = K8sApiServer(token="tk8s-token", bookmark_interval=0.5).start()
    try:
        yield api
    finally:
        api.stop()


__all__ = ["AsyncIterator"]
