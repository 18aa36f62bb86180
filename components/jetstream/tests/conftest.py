"""Fixtures of the jetstream tests: realistic events, anyio on asyncio, a real JetStream on the binary."""

from tapio_testing.component_fixtures import anyio_backend, events, jetstream, jetstream_engine

__all__ = ["anyio_backend", "events", "jetstream", "jetstream_engine"]
