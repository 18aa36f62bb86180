"""The kernel side of the collector, synchronous: loads the programs, polls the ring buffer,
drains the aggregation maps each interval and turns all of it into Events, counting lost
samples. The async Source (source.py) runs it in a worker thread; tests and the benchmark use it
directly.
"""

from __future__ import annotations

import time

import attrs
from prometheus_client import Counter

from tapio.events.v1 import events_pb2
from tapio_collector_ebpf import programs
from tapio_collector_ebpf.adapters import kernel
from tapio_collector_ebpf.adapters.bcc_session import BccSession, build_text
from tapio_collector_ebpf.adapters.cgroupfs import CgroupResolver
from tapio_collector_ebpf.domain import records
from tapio_collector_ebpf.domain.events import EventFactory
from tapio_collector_ebpf.errors import EbpfError
from tapio_collector_ebpf.settings import EbpfSettings
from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics

log = get_logger(__name__)


@attrs.define
class PollResult:
    events: list[events_pb2.Event]
    kernel_events: int
    """Kernel events these Events stand for (the sum of their counts)."""
    lost: int
    """Samples lost in the kernel since the previous poll."""


class KernelCollector:
    """Loaded programs plus what turns their output into Events. `close()` detaches them."""

    def __init__(
        self, settings: EbpfSettings, node: str, metrics: ComponentMetrics, cluster: str = ""
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        prefix = f"tapio_{metrics.component}"
        self.kernel_events = Counter(
            f"{prefix}_kernel_events",
            "Kernel events observed (the sum of the events' counts).",
            registry=metrics.registry,
        )
        self.kernel_lost = Counter(
            f"{prefix}_kernel_samples_lost",
            "Samples the kernel could not store, by reason.",
            ["reason"],
            registry=metrics.registry,
        )
        kernel.check_privileges()
        self.assembly = build_text(programs.select(settings.programs), settings.limits())
        for prog, (cat, ev) in self.assembly.missing:
            log.warning(
                "tracepoint missing on this kernel: program not loaded",
                program=prog.name,
                tracepoint=f"{cat}:{ev}",
            )
        if not self.assembly.loaded:
            raise EbpfError(
                "none of the selected programs can run: their tracepoints are missing on this kernel"
            )
        loaded = {p.name for p in self.assembly.loaded}
        if loaded & {"tcp_retransmit", "tcp_reset"} and "tcp_connect" not in loaded:
            log.warning(
                "tcp_retransmit/tcp_reset without tcp_connect: socket owners are not tracked, so "
                "their events carry cgroup 0 and no container"
            )
        self.resolver = CgroupResolver(default_runtime=settings.default_runtime)
        self.session = BccSession(self.assembly)
        self.factory = EventFactory(
            node=node,
            rules=settings.severity,
            containers=self.resolver.container,
            wall_offset_ns=time.time_ns() - time.monotonic_ns(),
            cluster=cluster,
        )
        self._next_drain = time.monotonic() + settings.interval_s
        self._lost = (0,) * len(records.LOST_REASON_NAMES)
        self.lost_total = 0
        log.info("BPF programs loaded", programs=",".join(p.name for p in self.assembly.loaded))

    def poll(self, timeout_ms: int | None = None, force_drain: bool = False) -> PollResult:
        """Waits up to `timeout_ms` for ring-buffer samples; drains the maps when the interval is up."""
        timeout = self.settings.poll_ms if timeout_ms is None else timeout_ms
        if not force_drain:
            timeout = max(0, min(timeout, int((self._next_drain - time.monotonic()) * 1000)))
        out: list[events_pb2.Event] = []
        kernel_events = 0
        for raw in self.session.poll(timeout):
            try:
                out.append(self.factory.sample(records.decode_sample(raw), raw))
                kernel_events += 1
            except records.DecodeError as e:
                self.metrics.drop("undecodable")
                log.error("undecodable ring-buffer sample", error=str(e))
        if force_drain or time.monotonic() >= self._next_drain:
            self._next_drain = time.monotonic() + self.settings.interval_s
            kernel_events += self._drain(out)
        lost = self._count_lost()
        if lost:
            for ev in out:
                ev.attributes["kernel_lost_samples"] = str(lost)
                ev.attributes["kernel_lost_samples_total"] = str(self.lost_total)
        self.kernel_events.inc(kernel_events)
        return PollResult(out, kernel_events, lost)

    def _drain(self, out: list[events_pb2.Event]) -> int:
        d = self.session.drain()
        window = d.end_ns - d.start_ns
        n = 0
        for kind, build, entries in (
            ("proc", self.factory.proc, d.proc),
            ("flow", self.factory.flow, d.flow),
        ):
            for key, value in entries:
                try:
                    rec: records.ProcAggregate | records.FlowAggregate = (
                        records.decode_proc(key, value, d.proc_value_size)
                        if kind == "proc"
                        else records.decode_flow(key, value)
                    )
                except records.DecodeError as e:
                    self.metrics.drop("undecodable")
                    log.error("undecodable map entry", error=str(e))
                    continue
                out.append(build(rec, window, key))  # type: ignore[arg-type]
                n += rec.count
        return n

    def _count_lost(self) -> int:
        now = self.session.lost()
        delta = [b - a for a, b in zip(self._lost, now, strict=True)]
        self._lost = now
        total = 0
        for name, n in zip(records.LOST_REASON_NAMES, delta, strict=True):
            if n:
                self.metrics.drop(f"kernel_{name}", n)
                self.kernel_lost.labels(reason=name).inc(n)
                log.warning("kernel samples lost", reason=name, count=n)
                total += n
        self.lost_total += total
        return total

    def close(self) -> None:
        self.session.close()
