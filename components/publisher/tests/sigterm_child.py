"""A producer process for test_shutdown: publishes until SIGTERM, then leaves through the Publisher."""

from __future__ import annotations

import signal
import sys

import anyio

from tapio.events.v1 import events_pb2
from tapio_common.config import NatsConfig
from tapio_publisher import Publisher, PublisherSettings


def chunk(start: int, n: int) -> list[events_pb2.Event]:
    out = []
    for i in range(start, start + n):
        ev = events_pb2.Event(id=f"c-{i:06d}", source=events_pb2.SOURCE_K8S, type="pods", action="updated")
        ev.context.namespace = f"ns-{i % 3}"
        ev.message = f"pod ns-{i % 3}/web-{i} updated"
        out.append(ev)
    return out


async def main(url: str, spool_dir: str, result: str) -> None:
    settings = PublisherSettings(
        spool_dir=spool_dir,
        batch_max_events=100,
        batch_linger=60.0,  # open batches stay in memory until shutdown
        ack_timeout=2.0,
        shutdown_timeout=5.0,
    )
    handed = 0
    nats_cfg = NatsConfig(urls=(url,), reconnect_wait=1.0, connect_timeout=1.0)
    async with Publisher(settings, nats=nats_cfg) as pub:
        with anyio.open_signal_receiver(signal.SIGTERM) as signals:
            async with anyio.create_task_group() as tg:

                async def stop_on_sigterm() -> None:
                    async for _ in signals:
                        tg.cancel_scope.cancel()
                        return

                tg.start_soon(stop_on_sigterm)
                print("ready", flush=True)
                while True:
                    await pub.publish_many(chunk(handed, 20))
                    handed += 20
                    await anyio.sleep(0.002)
    await anyio.Path(result).write_text(str(handed))


if __name__ == "__main__":
    url, spool_dir, result = sys.argv[1:4]
    anyio.run(main, url, spool_dir, result, backend="asyncio")
