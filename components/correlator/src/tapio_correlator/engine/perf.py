"""performance_degradation: repeated slow TCP connects from a workload's pods, then its pods unhealthy."""

from __future__ import annotations

from tapio_common.model import Event
from tapio_correlator.engine import text
from tapio_correlator.engine.config import EngineConfig
from tapio_correlator.engine.incident import Incident, Verdict

PERFORMANCE_DEGRADATION = "performance_degradation"


def is_latency(ev_type: str, action: str) -> bool:
    return ev_type == "tcp_connect_latency" or action == "high_latency"


class PerfIncident(Incident):
    """>= latency_min_events slow connects in latency_window from one workload, then unhealthy pods."""

    family = "perf"
    service_priority = 4

    __slots__ = ("last_latency", "max_latency", "slow", "unhealthy", "workload")

    def __init__(self, slow: list[Event], workload: str, cfg: EngineConfig) -> None:
        super().__init__(slow[0], slow[0].time)
        self.workload = workload
        self.last_latency = slow[0].time
        self.slow = 0
        self.max_latency = 0
        self.unhealthy: set[str] = set()
        for ev in slow:
            self.latency(ev, cfg)

    def latency(self, ev: Event, cfg: EngineConfig) -> None:
        if ev is not self.root:
            if self.full(cfg.max_incident_events):  # still part of it, no longer listed
                self.overflow += 1
                self.last_latency = max(self.last_latency, ev.time)
                self.extend(self.last_latency + max(cfg.perf_window_ns, cfg.latency_window_ns))
                return
            if not self.add(ev, "same_owner", cfg.max_incident_events):
                return
        self.slow += 1
        if ev.kernel is not None:
            self.max_latency = max(self.max_latency, ev.kernel.latency_ns)
        self.last_latency = max(self.last_latency, ev.time)
        self.extend(self.last_latency + max(cfg.perf_window_ns, cfg.latency_window_ns))

    def accepts_latency(self, t: int, cfg: EngineConfig) -> bool:
        return self.start <= t <= self.last_latency + cfg.latency_window_ns

    def accepts_unhealthy(self, t: int, cfg: EngineConfig) -> bool:
        return self.start <= t <= self.last_latency + cfg.perf_window_ns

    def verdict(self, cfg: EngineConfig) -> Verdict | None:
        if not self.unhealthy:
            return None
        score = 0.7 + (0.15 if self.services else 0.0)
        impact = ""
        svc = ""
        if self.services:
            svc = self.services[0].context.service
            impact = f" and Service {self.services[0].context.namespace}/{svc} lost its ready endpoints"
        summary = (
            f"Performance degradation: {self.slow} slow TCP connects (up to {self.max_latency / 1e6:.0f} ms) "
            f"from {text.workload_name(self.workload)}, then {text.plural(len(self.unhealthy), 'pod')} "
            f"failed readiness ({text.listing(self.unhealthy)}){impact}. Check what it connects to "
            f"(databases, upstream services) and its resource limits."
        )
        ns = self.root.context.namespace
        return Verdict(
            PERFORMANCE_DEGRADATION, score, summary, text.scope(self.root, ns, "", svc, self.workload)
        )
