"""Fixtures of the Kubernetes collector tests: the test API server, real JetStream (binary, the
shared component fixtures) provisioned with the production streams; helpers in k8s_helpers."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tapio_testing.component_fixtures import anyio_backend, jetstream, jetstream_engine
from tapio_testing.jetstream import JetStreamServer
from tapio_testing.k8s_api import K8sApiServer
from tapio_testing.layout_fixtures import provision

sys.path.insert(0, str(Path(__file__).parent))  # k8s_helpers


@pytest.fixture
async def events_url(jetstream: JetStreamServer) -> str:
    """A real nats-server (binary) with the production streams: its URL."""
    await provision(jetstream.url)
    return jetstream.url


@pytest.fixture
def k8s_api() -> Iterator[K8sApiServer]:
    api = K8sApiServer(token="tk8s-token", bookmark_interval=0.5).start()
    try:
        yield api
    finally:
        api.stop()


__all__ = ["AsyncIterator", "anyio_backend", "jetstream", "jetstream_engine"]
