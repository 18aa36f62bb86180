"""The `nc` fixture of the suites that run on a real nats-server with Tapio's streams: a client
connected to the `jetstream` fixture's server, with the production layout applied at scale 0.001
(every stream and durable of `tapio_jetstream.layout.production_layout`, small limits). A suite's
conftest imports it by name beside `tapio_testing.component_fixtures`. `provision(url)` applies the
same layout for suites whose code under test connects by itself (the collectors)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client

from tapio_common.nats.client import TapioClient
from tapio_jetstream.layout import production_layout
from tapio_jetstream.streams import apply_layout
from tapio_testing.jetstream import JetStreamServer

__all__ = ["LAYOUT_SCALE", "nc", "provision"]

LAYOUT_SCALE = 0.001  # stream limits of the production layout scaled down for a test server


@pytest.fixture
async def nc(jetstream: JetStreamServer) -> AsyncIterator[Client]:
    """The client Tapio connects with (no credentials) on `jetstream`, the production streams and
    durables applied."""
    client = TapioClient()
    await client.connect(jetstream.url)
    try:
        await apply_layout(client.jetstream(), 1, layout=production_layout(1, scale=LAYOUT_SCALE))
        yield client
    finally:
        await client.close()


async def provision(url: str) -> None:
    """The production streams and durables (LAYOUT_SCALE), one replica, on the server at `url`."""
    client = await nats.connect(url)
    try:
        await apply_layout(client.jetstream(), 1, layout=production_layout(1, scale=LAYOUT_SCALE))
    finally:
        await client.close()
