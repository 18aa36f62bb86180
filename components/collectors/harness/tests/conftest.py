"""Fixtures of the harness tests: anyio on asyncio, real JetStream from the nats-server binary."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # harness_tail, the tests' source

from tapio_testing.component_fixtures import anyio_backend, jetstream, jetstream_engine

__all__ = ["anyio_backend", "jetstream", "jetstream_engine"]
