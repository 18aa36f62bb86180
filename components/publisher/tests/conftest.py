"""Fixtures of the publisher tests: realistic events, anyio on asyncio, a real JetStream on the binary,
and `nc`: a client on it with the production layout applied."""

from tapio_testing.component_fixtures import anyio_backend, events, jetstream, jetstream_engine
from tapio_testing.layout_fixtures import nc

__all__ = ["anyio_backend", "events", "jetstream", "jetstream_engine", "nc"]
