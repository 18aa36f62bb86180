"""Settings of the eBPF collector: one frozen attrs class, each default written once here.

Pure (no I/O). The CLI builds it from flags and the `ebpf-collector:` YAML section.
"""

from __future__ import annotations

from typing import Any

import attrs

from tapio_collector_ebpf.domain.severity import SeverityRules
from tapio_collector_ebpf.programs import BY_NAME, KernelLimits
from tapio_common.cgroups import RUNTIME_PREFIXES


def _check_programs(_inst: object, _attr: object, value: tuple[str, ...]) -> None:
    if not value:
        raise ValueError("programs: at least one program is needed")
    for name in value:
        if name not in BY_NAME:
            raise ValueError(f"programs: unknown program {name!r} (known: {', '.join(BY_NAME)})")


def _positive(_inst: object, attr: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attr.name} must be above 0, not {value}")


@attrs.frozen
class EbpfSettings:
    programs: tuple[str, ...] = attrs.field(
        default=tuple(BY_NAME), converter=tuple, validator=_check_programs,
        metadata={"help": "programs to load (see the list above)"},
    )  # fmt: skip
    interval_s: float = attrs.field(
        default=1.0,
        validator=_positive,
        metadata={"help": "in-kernel aggregation window: maps are drained this often"},
    )
    poll_ms: int = attrs.field(
        default=100, validator=_positive, metadata={"help": "ring-buffer poll timeout"}
    )
    latency_threshold_ns: int = attrs.field(
        default=100_000_000,
        metadata={"help": "connects at least this slow become one tcp_connect_latency event each"},
    )
    ringbuf_pages: int = attrs.field(default=256, metadata={"help": "ring buffer size in pages (power of 2)"})
    proc_entries: int = attrs.field(
        default=16384, metadata={"help": "distinct (cgroup, comm, status) per window"}
    )
    flow_entries: int = attrs.field(
        default=16384, metadata={"help": "distinct (cgroup, kind, flow) per window"}
    )
    owner_entries: int = attrs.field(default=65536, metadata={"help": "sockets whose owner is tracked (LRU)"})
    default_runtime: str = attrs.field(
        default="containerd",
        validator=attrs.validators.in_(tuple(RUNTIME_PREFIXES)),
        metadata={"help": "runtime of bare 64-hex cgroup directories (cgroupfs driver)"},
    )
    severity: SeverityRules = attrs.field(factory=SeverityRules)

    def __attrs_post_init__(self) -> None:
        pages = self.ringbuf_pages
        if pages <= 0 or pages & (pages - 1):
            raise ValueError(f"ringbuf_pages must be a power of 2, not {pages}")

    def limits(self) -> KernelLimits:
        return KernelLimits(
            latency_threshold_ns=self.latency_threshold_ns,
            ringbuf_pages=self.ringbuf_pages,
            proc_entries=self.proc_entries,
            flow_entries=self.flow_entries,
            owner_entries=self.owner_entries,
        )
