"""The production stream layout on a test nats-server, at test scale: what component tests that
publish into TAPIO_EVENTS (collectors, the publisher) provision before they start.

Fed by `tapio_jetstream.layout.production_layout` (the streams and durables production has), scaled
down (1%) so a test server's storage limits hold them."""

from __future__ import annotations

import nats

from tapio_jetstream.layout import production_layout
from tapio_jetstream.streams import apply_layout

TEST_SCALE = 0.01


async def provision(url: str) -> None:
    """Creates (or updates) the production streams and consumers, one replica, on the server at `url`."""
    nc = await nats.connect(url)
    try:
        await apply_layout(nc.jetstream(), 1, layout=production_layout(1, scale=TEST_SCALE))
    finally:
        await nc.close()
