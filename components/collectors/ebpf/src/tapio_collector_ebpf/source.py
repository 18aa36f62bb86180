"""The eBPF collector's Source for the collector harness: runs the KernelCollector in a worker
thread (bcc blocks) and emits what each poll yields; a last drain on shutdown, so the window in
progress is not lost."""

from __future__ import annotations

from typing import Protocol

import anyio

from tapio.events.v1 import events_pb2
from tapio_collector_ebpf.collector import KernelCollector
from tapio_collector_ebpf.settings import EbpfSettings
from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics

log = get_logger(__name__)


class OutputLike(Protocol):
    """What the source needs of the harness's Output."""

    node_name: str
    metrics: ComponentMetrics

    async def emit_many(self, events: list[events_pb2.Event]) -> None: ...

    def set_ready(self, ready: bool, detail: str = "") -> None: ...


class EbpfSource:
    def __init__(self, settings: EbpfSettings, cluster: str = "") -> None:
        self.settings = settings
        self.cluster = cluster

    async def run(self, out: OutputLike) -> None:
        collector = await anyio.to_thread.run_sync(
            KernelCollector, self.settings, out.node_name, out.metrics, self.cluster
        )
        loaded = ",".join(p.name for p in collector.assembly.loaded)
        missing = ",".join(f"{p.name}({c}:{e})" for p, (c, e) in collector.assembly.missing)
        out.set_ready(True, f"programs {loaded}" + (f"; missing tracepoints: {missing}" if missing else ""))
        try:
            while True:
                res = await anyio.to_thread.run_sync(collector.poll)
                if res.events:
                    await out.emit_many(res.events)
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    res = await anyio.to_thread.run_sync(lambda: collector.poll(0, force_drain=True))
                    if res.events:
                        await out.emit_many(res.events)
                finally:
                    await anyio.to_thread.run_sync(collector.close)
