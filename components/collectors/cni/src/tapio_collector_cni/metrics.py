"""The CNI collector's own metrics, next to the standard ones in the component's registry:
`tapio_cni_collector_sample_seconds`, `_interfaces`, `_findings_total{action,direction}`,
`_counter_resets_total`, `_sample_overruns_total`, `_peers_resolved_total{result}`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from tapio_common.metrics import ComponentMetrics

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class CniMetrics:
    def __init__(self, base: ComponentMetrics) -> None:
        prefix = f"tapio_{base.component}"
        reg = base.registry
        self.sample_seconds = Histogram(
            f"{prefix}_sample_seconds",
            "Wall time of one netlink sample of every interface.",
            buckets=_BUCKETS,
            registry=reg,
        )
        self.interfaces = Gauge(f"{prefix}_interfaces", "Interfaces in the last sample.", registry=reg)
        self.findings = Counter(
            f"{prefix}_findings",
            "Findings reported, by action and direction.",
            ["action", "direction"],
            registry=reg,
        )
        self.resets = Counter(
            f"{prefix}_counter_resets",
            "Interfaces whose counters went backwards (new baseline).",
            registry=reg,
        )
        self.overruns = Counter(
            f"{prefix}_sample_overruns",
            "Sampling intervals skipped because a sample took longer (the next window is longer).",
            registry=reg,
        )
        self.peers = Counter(
            f"{prefix}_peers_resolved",
            "veth peer lookups, by result (found|unknown).",
            ["result"],
            registry=reg,
        )
