"""Service dependencies: which Services are down, who connects to them, and the claims on callers.

Fed by the routing (`routing.Routing.service_impact` marks a Service down, with the incident that
holds its impact) and by kernel connection events (`tcp_reset`, failed or slow connects) whose
destination address is a Service's cluster IP or one of its pods' IPs (`note_connection`). A
failure of a pod of ANOTHER workload within the cascade window after a Service went down is
claimed for the incident holding that Service's impact, with relation `depends_on`: strongly with
connection evidence from the pod's workload toward the Service, weakly (timing alone) when the
pod runs in the Service's namespace. See `depend.DependencyIncident` for the incident itself.
"""

from __future__ import annotations

from tapio_common.model import Correlation, Event
from tapio_correlator.engine import precedence
from tapio_correlator.engine.config import EngineConfig
from tapio_correlator.engine.depend import DependencyIncident
from tapio_correlator.engine.incident import CONNECTS_TO, DEPENDS_ON, FOLLOWED, Incident
from tapio_correlator.engine.precedence import Best
from tapio_correlator.engine.records import PodInfo
from tapio_correlator.engine.state import EngineState

MAX_EVIDENCE = 16  # connection events kept per (destination, caller workload)


class DownService:
    """A Service that lost its endpoints, and the incident holding that impact."""

    __slots__ = ("event", "ips", "key", "namespace", "owner", "selector", "until")

    def __init__(
        self,
        event: Event,
        key: str,
        selector: dict[str, str],
        owner: Incident,
        ips: frozenset[str],
        until: int,
    ) -> None:
        self.event = event
        self.key = key
        self.namespace = key.partition("/")[0]
        self.selector = selector
        self.owner = owner
        self.ips = ips  # its cluster IPs and the IPs of the pods it selects
        self.until = until

    def selects(self, p: PodInfo) -> bool:
        """Whether `p` is one of the Service's own pods (then it is no caller)."""
        sel = self.selector
        return (
            bool(sel) and p.namespace == self.namespace and all(p.labels.get(k) == v for k, v in sel.items())
        )


class Dependencies(EngineState):
    """Down Services, connection evidence, and the dependency claims on pod failures."""

    def __init__(self, cfg: EngineConfig) -> None:
        super().__init__(cfg)
        self.down: dict[str, DownService] = {}  # "namespace/name" -> the Service's latest loss
        # destination IP -> caller workload -> its recent connection trouble toward that IP
        self.connects: dict[str, dict[str, list[Event]]] = {}
        self.adopting = False

    def service_down(
        self,
        t: int,
        ev: Event,
        key: str,
        selector: dict[str, str],
        owner: Incident | None,
        out: list[Correlation],
    ) -> None:
        """Records that Service `key` lost its endpoints (`owner`: the incident the impact joined)."""
        cfg = self.cfg
        known = self.down.get(key)
        if owner is None:
            if known is not None and known.event.time - cfg.clock_skew_ns <= t <= known.until:
                if known.owner.add(ev, FOLLOWED, cfg.max_incident_events):
                    known.owner.extend(t + cfg.cascade_window_ns)
                    self.publish(known.owner, out)
                return
            dep = DependencyIncident(ev, key, cfg.cascade_window_ns)
            self.open(dep)
            owner = dep
        elif known is not None and known.event.id == ev.id and isinstance(known.owner, DependencyIncident):
            stale = known.owner  # the impact first stood alone; a late cause now explains it
            if stale.cid is None and stale.serial in self.incidents:
                del self.incidents[stale.serial]
        ips = set(self.topo.cluster_ips.get(key, ()))
        for p in self.topo.pods_selected(key.partition("/")[0], selector):
            ips.update(p.ips)
        self.down[key] = DownService(ev, key, selector, owner, frozenset(ips), t + cfg.cascade_window_ns)
        if not self.adopting:
            self.adopting = True
            try:
                self.adopt_loose(ev.time - cfg.clock_skew_ns, out)
            finally:
                self.adopting = False

    def adopt_loose(self, since: int, out: list[Correlation]) -> None:
        """Hook: offers loose failures from `since` on to the open incidents (see routing.Routing)."""
        raise NotImplementedError

    def sweep(self, now: int, out: list[Correlation]) -> None:
        super().sweep(now, out)
        self.forget_dependencies(now)

    def evidence(self, d: DownService, workload: str) -> list[Event]:
        """The connection trouble from `workload` toward the Service, from a window before it went down."""
        earliest = d.event.time - self.cfg.cascade_window_ns
        found: list[Event] = []
        for ip in d.ips:
            found.extend(ev for ev in self.connects.get(ip, {}).get(workload, ()) if ev.time >= earliest)
        return found

    def dependency_claims(self, t: int, p: PodInfo, best: Best) -> None:
        """Claims of the Services that went down on a failure of pod `p` (a possible caller)."""
        skew = self.cfg.clock_skew_ns
        for d in self.down.values():
            if not (d.event.time - skew <= t <= d.until) or d.owner.serial not in self.incidents:
                continue
            if d.selects(p):
                continue
            if self.evidence(d, p.workload):
                best.consider(d.owner, precedence.CONNECTED_DEPENDENCY, DEPENDS_ON)
            elif p.namespace == d.namespace:
                best.consider(d.owner, precedence.NAMESPACE_DEPENDENCY, DEPENDS_ON)

    def caller_joined(self, inc: Incident, p: PodInfo) -> None:
        """A caller's failure joined `inc` as `depends_on`: records it, with its evidence if any."""
        if not isinstance(inc, DependencyIncident):
            return
        inc.callers.setdefault(p.workload, f"{p.namespace}/{p.name}")
        for d in self.down.values():
            if d.owner is inc:
                for ev in self.evidence(d, p.workload):
                    inc.connected.add(p.workload)
                    inc.add(ev, CONNECTS_TO, self.cfg.max_incident_events)

    def note_connection(self, t: int, ev: Event, daddr: str, out: list[Correlation]) -> bool:
        """Kernel connection trouble from a pod toward `daddr`; False when its source is unknown."""
        p = self.topo.resolve_pod(ev.context)
        if p is None or not p.workload:
            return False
        recent = self.connects.setdefault(daddr, {}).setdefault(p.workload, [])
        recent.append(ev)
        if len(recent) > MAX_EVIDENCE:
            recent.pop(0)
        for d in list(self.down.values()):
            inc = d.owner
            if daddr not in d.ips or inc.serial not in self.incidents or d.selects(p):
                continue
            if isinstance(inc, DependencyIncident) and p.workload in inc.callers:
                if ev.time >= d.event.time - self.cfg.cascade_window_ns:
                    inc.connected.add(p.workload)
                    inc.add(ev, CONNECTS_TO, self.cfg.max_incident_events)
                    self.publish(inc, out)
            elif ev.time < self.clock:
                # Evidence arriving late: failures of this caller that found no link yet take it now.
                self.adopt_loose(d.event.time - self.cfg.clock_skew_ns, out)
        return True

    def forget_dependencies(self, now: int) -> None:
        """Drops down Services and connection evidence no window can reach any more."""
        horizon = now - self.cfg.cascade_window_ns - self.cfg.late_grace_ns
        if self.down:
            for key in [k for k, d in self.down.items() if d.until < horizon]:
                del self.down[key]
        if self.connects:
            for ip in list(self.connects):
                callers = self.connects[ip]
                for w in [w for w, evs in callers.items() if evs[-1].time < horizon]:
                    del callers[w]
                if not callers:
                    del self.connects[ip]
