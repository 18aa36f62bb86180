"""Routing of failures to the incident that explains them: pod failures, Service impacts, loose ends.

Fed by the handlers (`handlers.Handlers`): a pod failure goes to the open incident with the
strongest claim on it (`precedence`); a Service losing its endpoints goes to the incident whose
failed pods it selects. What joins nothing is kept "loose" for a while: a cause that arrives late
(a collector's spool after an outage) or is stamped up to the clock skew after its effects takes
the loose failures it explains when it opens (`adopt_loose`).
"""

from __future__ import annotations

import bisect

from tapio_common.model import Correlation, Event
from tapio_correlator.engine import cause, precedence
from tapio_correlator.engine.cause import CauseIncident
from tapio_correlator.engine.dependencies import Dependencies
from tapio_correlator.engine.incident import (
    DEPENDS_ON,
    NEW_REPLICASET,
    SAME_NODE,
    SAME_OWNER,
    SAME_POD,
    SELECTED_BY_SERVICE,
    FailedPod,
    Incident,
)
from tapio_correlator.engine.nodes import PressureIncident
from tapio_correlator.engine.perf import PerfIncident
from tapio_correlator.engine.precedence import Best
from tapio_correlator.engine.records import PodInfo
from tapio_correlator.engine.rollout import CrashIncident, DeployIncident, restarts_seen

FAILURES = frozenset({"restarted", "crash_loop", "unhealthy", "oom_killed", "evicted", "not_ready"})
RESTARTS = frozenset({"restarted", "crash_loop"})
DEPLOY_FAILURES = frozenset({"restarted", "crash_loop", "unhealthy"})
NODE_LOSS = frozenset({"not_ready", "evicted"})
CALLER_FAILURES = frozenset({"restarted", "crash_loop", "unhealthy"})
SERVICE_TYPES = frozenset({"services", "endpoints"})
# A ReplicaSet first seen this little before a template change is taken as the rollout's new one
# (watch events of the Deployment and of its new ReplicaSet may be stamped slightly out of order).
ROLLOUT_SKEW_NS = 5_000_000_000


def transient_pod(ev: Event) -> PodInfo:
    """A pod the topology does not know (the engine started after it was created)."""
    c = ev.context
    p = PodInfo(c.pod_uid or f"{c.namespace}/{c.pod}", c.namespace, c.pod, ev.time)
    p.node = c.node
    p.labels = dict(c.labels)
    p.workload = f"{c.namespace}/Pod/{c.pod}"
    if c.workload is not None and c.workload.name:
        p.workload = f"{c.namespace}/{c.workload.kind}/{c.workload.name}"
    return p


class Routing(Dependencies):
    """Pod failures and Service impacts to incidents; loose failures for late causes."""

    def pod_of(self, ev: Event) -> PodInfo:
        p = self.topo.resolve_pod(ev.context)
        return p if p is not None else transient_pod(ev)

    def claims(self, t: int, ev: Event, p: PodInfo) -> Best:
        """Every open incident's claim on the failure `ev` of pod `p` at `t`; the strongest wins."""
        cfg = self.cfg
        action = ev.action
        best = Best()
        if p.deployment and action in DEPLOY_FAILURES:
            dep = self.deploys.get(p.deployment)
            if (
                dep is not None
                and dep.accepts(t, cfg.deploy_window_ns)
                and dep.is_new_pod(p.rs, p.seen + ROLLOUT_SKEW_NS)
            ):
                best.consider(dep, precedence.NEW_REPLICASET, NEW_REPLICASET)
        if action in RESTARTS:
            crash = self.crashes.get(p.uid)
            if crash is not None and crash.accepts(t, cfg.crash_window_ns):
                best.consider(crash, precedence.OWN_CRASH_LOOP, SAME_POD)
        oom = self.oom_by_workload.get(p.workload)
        if oom is not None and oom.accepts_failure(t, cfg.cascade_window_ns):
            if p.uid in oom.kills:
                best.consider(oom, precedence.OWN_OOM_KILL, SAME_POD)
            else:
                best.consider(oom, precedence.SIBLING_OOM_KILL, SAME_OWNER)
        for c in self.causes_by_node.get(p.node, ()):
            if c.kind == cause.NODE and c.accepts_failure(t, cfg.node_window_ns):
                strength = precedence.NODE_LOSS if action in NODE_LOSS else precedence.NODE_TROUBLE
                best.consider(c, strength, SAME_NODE)
            elif c.kind == cause.OOM and c.accepts_failure(t, cfg.cascade_window_ns):
                best.consider(c, precedence.NEIGHBOUR_OOM_KILL, SAME_NODE)
        if action == "unhealthy":
            perf = self.perf.get(p.workload)
            if perf is not None and perf.accepts_unhealthy(t, cfg):
                best.consider(perf, precedence.SLOW_CONNECTS, SAME_OWNER)
        if action == "evicted":
            pressure = self.pressure.get(p.node)
            if pressure is not None and pressure.accepts(t, cfg.pressure_window_ns):
                best.consider(pressure, precedence.PRESSURE_EVICTION, SAME_NODE)
        if action in CALLER_FAILURES and self.down:
            self.dependency_claims(t, p, best)
        return best

    def pod_failure(self, t: int, ev: Event, p: PodInfo, out: list[Correlation]) -> bool:
        """Routes a failure of pod `p` (not an OOM kill); False when it changes nothing."""
        k = ev.k8s
        if ev.action == "restarted" and (k is None or k.exit_code == 0):
            return False  # a clean restart is no failure
        best = self.claims(t, ev, p)
        inc = best.incident
        if inc is None:
            if ev.action in RESTARTS:
                self.track_restart(t, ev, p, out)
            else:
                self.orphan(ev)
                self.loose.append(ev)
            return True
        self.join(inc, t, ev, p, best.relation, out)
        return True

    def join(
        self, inc: Incident, t: int, ev: Event, p: PodInfo, relation: str, out: list[Correlation]
    ) -> None:
        cfg = self.cfg
        if isinstance(inc, CrashIncident):
            inc.restart(ev, cfg.crash_window_ns, cfg.max_incident_events)
        elif not inc.add(ev, relation, cfg.max_incident_events):
            return
        self.adopt(ev)
        name = f"{p.namespace}/{p.name}"
        if isinstance(inc, DeployIncident):
            inc.failure(ev, name)
        elif isinstance(inc, PerfIncident):
            inc.unhealthy.add(name)
        elif isinstance(inc, PressureIncident):
            inc.evicted.append(name)
        elif isinstance(inc, CauseIncident) and ev.action in NODE_LOSS:
            inc.lost.add(p.uid)
        if relation == DEPENDS_ON:
            self.caller_joined(inc, p)
        self.note_failure(inc, self.failed_pod(p, t, ev), t + cfg.cascade_window_ns)
        self.publish(inc, out)

    @staticmethod
    def failed_pod(p: PodInfo, t: int, ev: Event) -> FailedPod:
        """The failed pod, with the labels its event carries (else the topology's)."""
        labels = ev.context.labels
        return FailedPod(p.uid, p.namespace, p.name, p.node, labels or p.labels, p.workload, t)

    def track_restart(self, t: int, ev: Event, p: PodInfo, out: list[Correlation]) -> None:
        """Restarts of one pod that joined nothing: a crash loop once enough fall in one window."""
        cfg = self.cfg
        track = self.crash_track.setdefault(p.uid, [])
        if any(e.id == ev.id for e in track):
            return
        bisect.insort(track, ev, key=lambda e: e.time)  # a late restart goes where it belongs
        while track[-1].time - track[0].time > cfg.crash_window_ns:
            track.pop(0)
        if restarts_seen(track) < cfg.crash_min_restarts:
            self.orphan(ev)
            return
        del self.crash_track[p.uid]
        inc = CrashIncident(track, p.uid, cfg.crash_window_ns, cfg.max_incident_events)
        self.open(inc)
        self.index_one(inc, self.crashes, p.uid)
        for e in track:
            self.adopt(e)
        self.note_failure(inc, self.failed_pod(p, t, ev), t + cfg.cascade_window_ns)
        self.publish(inc, out)

    # --- Services ------------------------------------------------------------------------------

    def service_impact(self, t: int, ev: Event, out: list[Correlation], loose_ok: bool = True) -> bool:
        """A Service lost its endpoints: joins the incident whose failed pods it selects."""
        c = ev.context
        name = c.service or (ev.k8s.name if ev.k8s is not None else "")
        selector = dict(ev.k8s.selector) if ev.k8s is not None and ev.k8s.selector else {}
        selector = selector or self.topo.selector_of(c.namespace, name)
        cfg = self.cfg
        best: Incident | None = None
        best_key = (-1, 0, 0)
        for inc in self.by_namespace.get(c.namespace, ()):
            window = cfg.perf_window_ns if isinstance(inc, PerfIncident) else cfg.cascade_window_ns
            key = (inc.service_priority, -inc.root.time, -inc.serial)
            if key > best_key and inc.service_match(ev, c.namespace, selector, window, cfg.clock_skew_ns):
                best, best_key = inc, key
        if best is None:
            if loose_ok:
                self.service_down(t, ev, f"{c.namespace}/{name}", selector, None, out)
                self.loose.append(ev)
            return True
        if not best.add(ev, SELECTED_BY_SERVICE, cfg.max_incident_events):
            return False
        self.adopt(ev)
        best.services.append(ev)
        self.service_down(t, ev, f"{c.namespace}/{name}", selector, best, out)
        self.publish(best, out)
        return True

    # --- loose failures and late causes ----------------------------------------------------------

    def adopt_loose(self, since: int, out: list[Correlation]) -> None:
        """Offers the loose failures (and tracked restarts) from `since` on to the open incidents again.

        Called when a cause opens or is re-rooted: failures that arrived before it (late cause,
        or one stamped within the clock skew after them) join it as they would have in time order.
        """
        again = [ev for ev in self.loose if ev.time >= since]
        for track in self.crash_track.values():
            again.extend(ev for ev in track if ev.time >= since)
        if not again:
            return
        ids = {ev.id for ev in again}
        self.loose = type(self.loose)(ev for ev in self.loose if ev.id not in ids)
        for uid in list(self.crash_track):
            kept = [ev for ev in self.crash_track[uid] if ev.id not in ids]
            if kept:
                self.crash_track[uid] = kept
            else:
                del self.crash_track[uid]
        again.sort(key=lambda e: (e.time, e.type in SERVICE_TYPES, e.id))
        for ev in again:
            if ev.type in SERVICE_TYPES:
                self.service_impact(ev.time, ev, out)
            else:
                self.pod_failure(ev.time, ev, self.pod_of(ev), out)


__all__ = ["FAILURES", "Routing"]
