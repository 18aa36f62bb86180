"""Settings of the eBPF collector: one frozen attrs class of `setting(...)`s, each default and help
written once here; `tapio_common.config.load_settings` builds it from flags, environment and the
`ebpf-collector:` YAML section. Pure (no I/O)."""

from __future__ import annotations

from typing import Any

import attrs

from tapio_collector_ebpf.domain.severity import SeverityRules
from tapio_collector_ebpf.programs import BY_NAME, KernelLimits
from tapio_common.cgroups import RUNTIME_PREFIXES
from tapio_common.config.schema import above, at_least, group, one_of, setting
from tapio_common.errors import ConfigError

MS = 1_000_000
SECOND = 1_000_000_000


def _check_programs(_inst: Any, _attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    if not value:
        raise ConfigError("programs: at least one program is needed")
    for name in value:
        if name not in BY_NAME:
            raise ConfigError(f"programs: unknown program {name!r} (known: {', '.join(BY_NAME)})")


def _power_of_two(_inst: Any, attr: attrs.Attribute[Any], value: int) -> None:
    if value <= 0 or value & (value - 1):
        raise ConfigError(f"{attr.name} must be a power of 2, got {value}")


@attrs.frozen(kw_only=True)
class EbpfSettings:
    programs: tuple[str, ...] = setting(
        tuple(BY_NAME),
        "programs to load (comma-separated; see the list above)",
        check=_check_programs,
        metavar="LIST",
    )
    interval_ns: int = setting(
        SECOND, "aggregation window: the kernel maps are drained this often", check=above(0), unit="ns"
    )
    poll_ns: int = setting(100 * MS, "ring-buffer poll timeout", check=above(0), unit="ns")
    latency_threshold_ns: int = setting(
        100 * MS,
        "connects at least this slow become one tcp_connect_latency event each",
        check=at_least(0),
        unit="ns",
    )
    ringbuf_pages: int = setting(256, "ring buffer size in pages (a power of 2)", check=_power_of_two)
    proc_entries: int = setting(16384, "distinct (cgroup, comm, status) per window and half", check=above(0))
    flow_entries: int = setting(16384, "distinct (cgroup, kind, flow) per window and half", check=above(0))
    owner_entries: int = setting(65536, "sockets whose owner is tracked (LRU)", check=above(0))
    default_runtime: str = setting(
        "containerd",
        "runtime of bare 64-hex cgroup directories (cgroupfs driver)",
        check=one_of(tuple(RUNTIME_PREFIXES)),
    )
    severity: SeverityRules = group(SeverityRules, "severity thresholds")

    @property
    def interval_s(self) -> float:
        return self.interval_ns / SECOND

    @property
    def poll_ms(self) -> int:
        return max(1, self.poll_ns // MS)

    def limits(self) -> KernelLimits:
        return KernelLimits(
            latency_threshold_ns=self.latency_threshold_ns,
            ringbuf_pages=self.ringbuf_pages,
            proc_entries=self.proc_entries,
            flow_entries=self.flow_entries,
            owner_entries=self.owner_entries,
        )
