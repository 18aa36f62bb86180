"""Per-event-type handlers: topology updates, causes, and routing of failures to the incident they join.

Handlers receive (time, event, out) where the event is an attrs Event or a protobuf Event; the
frequent lifecycle/noise paths read fields directly, anything a rule keeps is converted first.
"""

from __future__ import annotations

from typing import Any

from tapio_common.model import Correlation, Event
from tapio_correlator.engine import cause, text
from tapio_correlator.engine.cause import CauseIncident
from tapio_correlator.engine.incident import (
    CAUSED,
    FOLLOWED,
    NEW_REPLICASET,
    SAME_NODE,
    SAME_OWNER,
    SAME_POD,
    SELECTED_BY_SERVICE,
    FailedPod,
    Incident,
)
from tapio_correlator.engine.nodes import PRESSURE_CONDITIONS, NetworkIncident, PressureIncident, is_loss
from tapio_correlator.engine.perf import PerfIncident
from tapio_correlator.engine.rollout import STALL_REASONS, CrashIncident, DeployIncident, restarts_seen
from tapio_correlator.engine.state import EngineState, as_event, k8s_payload
from tapio_correlator.engine.topology import PodInfo

FAILURES = frozenset({"restarted", "crash_loop", "unhealthy", "oom_killed", "evicted", "not_ready"})
RESTARTS = frozenset({"restarted", "crash_loop"})
DEPLOY_FAILURES = frozenset({"restarted", "crash_loop", "unhealthy"})
NODE_LOSS = frozenset({"not_ready", "evicted"})
NOT_READY = frozenset({"False", "Unknown"})
# A ReplicaSet first seen this little before a template change is taken as the rollout's new one
# (watch events of the Deployment and of its new ReplicaSet may be stamped slightly out of order).
ROLLOUT_SKEW_NS = 5_000_000_000
# Kernel OOM kill, the pod's oom_killed, its OOMKilled restart: counted as one kill (see CauseIncident).
KERNEL_KILL, POD_KILL, OOM_RESTART = 0, 1, 2


def _transient_pod(ev: Event) -> PodInfo:
    """A pod the topology does not know (the engine started after it was created)."""
    c = ev.context
    p = PodInfo(c.pod_uid or f"{c.namespace}/{c.pod}", c.namespace, c.pod, ev.time)
    p.node = c.node
    p.labels = dict(c.labels)
    p.workload = f"{c.namespace}/Pod/{c.pod}"
    if c.workload is not None and c.workload.name:
        p.workload = f"{c.namespace}/{c.workload.kind}/{c.workload.name}"
    return p


class Handlers(EngineState):
    """Routes every kind of event; see CORRELATION.md for the rules and their precedence."""

    # --- pods -----------------------------------------------------------------------------------

    def on_pod(self, t: int, ev: Any, out: list[Correlation]) -> None:
        action = ev.action
        rec = self.topo.pod_event(t, ev, action)
        if action not in FAILURES:
            return
        full = as_event(ev)
        self.pod_failure(t, full, rec if rec is not None else _transient_pod(full), out)

    def pod_failure(self, t: int, ev: Event, p: PodInfo, out: list[Correlation]) -> None:
        action = ev.action
        k = ev.k8s
        if action == "oom_killed" or (k is not None and k.termination_reason == "OOMKilled"):
            self.oom(t, ev, p, POD_KILL if action == "oom_killed" else OOM_RESTART, out)
            return
        restart = action in RESTARTS
        if action == "restarted" and (k is None or k.exit_code == 0):
            return  # a clean restart is no failure
        cfg = self.cfg
        best: Incident | None = None
        best_key: tuple[int, int, int] = (-1, 0, 0)
        relation = ""

        def consider(inc: Incident, strength: int, rel: str) -> None:
            nonlocal best, best_key, relation
            key = (strength, -inc.root.time, -inc.serial)
            if key > best_key:
                best, best_key, relation = inc, key, rel

        if p.deployment and action in DEPLOY_FAILURES:
            dep = self.deploys.get(p.deployment)
            if (
                dep is not None
                and dep.accepts(t, cfg.deploy_window_ns)
                and dep.is_new_pod(p.rs, p.seen + ROLLOUT_SKEW_NS)
            ):
                consider(dep, 47, NEW_REPLICASET)
        if restart:
            crash = self.crashes.get(p.uid)
            if crash is not None and crash.accepts(t, cfg.crash_window_ns):
                consider(crash, 45, SAME_POD)
        oom = self.oom_by_workload.get(p.workload)
        if oom is not None and oom.accepts_failure(t, cfg.cascade_window_ns):
            consider(oom, 44 if p.uid in oom.kills else 40, SAME_POD if p.uid in oom.kills else SAME_OWNER)
        for c in self.causes_by_node.get(p.node, ()):
            if c.kind == cause.NODE and c.accepts_failure(t, cfg.node_window_ns):
                consider(c, 42 if action in NODE_LOSS else 30, SAME_NODE)
            elif c.kind == cause.OOM and c.accepts_failure(t, cfg.cascade_window_ns):
                consider(c, 20, SAME_NODE)
        if action == "unhealthy":
            perf = self.perf.get(p.workload)
            if perf is not None and perf.accepts_unhealthy(t, cfg):
                consider(perf, 40, SAME_OWNER)
        if action == "evicted":
            pressure = self.pressure.get(p.node)
            if pressure is not None and pressure.accepts(t, cfg.pressure_window_ns):
                consider(pressure, 43, SAME_NODE)
        if best is None:
            if restart:
                self.track_restart(t, ev, p, out)
            else:
                self.orphan(ev)
            return
        if isinstance(best, CrashIncident):
            best.restart(ev, cfg.crash_window_ns, cfg.max_incident_events)
        elif not best.add(ev, relation, cfg.max_incident_events):
            return  # the same event again (a redelivery)
        if isinstance(best, DeployIncident):
            best.failure(ev, f"{p.namespace}/{p.name}")
        elif isinstance(best, PerfIncident):
            best.unhealthy.add(f"{p.namespace}/{p.name}")
        elif isinstance(best, PressureIncident):
            best.evicted.append(f"{p.namespace}/{p.name}")
        self.note_failure(best, self._failed(p, t, ev), t + cfg.cascade_window_ns)
        self.publish(best, out)

    @staticmethod
    def _failed(p: PodInfo, t: int, ev: Event) -> FailedPod:
        """The failed pod, with the labels its event carries (else the topology's)."""
        labels = ev.context.labels
        return FailedPod(p.uid, p.namespace, p.name, p.node, labels or p.labels, p.workload, t)

    def track_restart(self, t: int, ev: Event, p: PodInfo, out: list[Correlation]) -> None:
        """Restarts of one pod that joined nothing: a crash loop once enough fall in one window."""
        cfg = self.cfg
        track = self.crash_track.setdefault(p.uid, [])
        if any(e.id == ev.id for e in track):
            return
        track.append(ev)
        while t - track[0].time > cfg.crash_window_ns:
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
        self.note_failure(inc, self._failed(p, t, ev), t + cfg.cascade_window_ns)
        self.publish(inc, out)

    # --- causes ------------------------------------------------------------------------------

    def oom(self, t: int, ev: Event, p: PodInfo, slot: int, out: list[Correlation]) -> None:
        """An OOM kill (kernel or pod view) or an OOMKilled restart of pod `p`."""
        cfg = self.cfg
        inc = self.oom_by_workload.get(p.workload)
        if inc is not None and inc.root.time <= t <= inc.anchor + cfg.oom_repeat_window_ns:
            inc.add(ev, SAME_POD if p.uid in inc.kills else SAME_OWNER, cfg.max_incident_events)
            inc.anchor = max(inc.anchor, t)
            if p.node and p.node not in inc.nodes:
                inc.nodes.add(p.node)
                self.index_many(inc, self.causes_by_node, p.node)
        else:
            inc = CauseIncident(ev, cause.OOM, p.node, p.workload, cfg.cascade_window_ns)
            self.open(inc)
            self.index_one(inc, self.oom_by_workload, p.workload)
            if p.node:
                self.index_many(inc, self.causes_by_node, p.node)
        inc.add_kill(p.uid, slot)
        self.note_failure(inc, self._failed(p, t, ev), t + cfg.cascade_window_ns)
        self.publish(inc, out)

    def on_oom_kill(self, t: int, ev: Any, out: list[Correlation]) -> None:
        full = as_event(ev)
        c = full.context
        p = self.topo.resolve_pod(c)
        if p is None and (c.pod or c.pod_uid):
            p = _transient_pod(full)
        if p is not None:
            self.oom(t, full, p, KERNEL_KILL, out)
        elif c.node:
            self.node_scoped_cause(t, full, c.node, out)
        else:
            self.orphan(full)

    def node_scoped_cause(
        self, t: int, ev: Event, node: str, out: list[Correlation], critical: bool = False
    ) -> None:
        """A cause scoped to a node: unit failed, node not ready, a node-level OOM kill."""
        cfg = self.cfg
        inc = self.node_cause.get(node)
        if inc is not None and inc.root.time <= t <= inc.anchor + cfg.node_window_ns:
            inc.add(ev, CAUSED, cfg.max_incident_events)
            inc.anchor = max(inc.anchor, t)
        else:
            inc = CauseIncident(ev, cause.NODE, node, "", cfg.node_window_ns)
            self.open(inc)
            self.index_one(inc, self.node_cause, node)
            self.index_many(inc, self.causes_by_node, node)
        if critical and inc.root is ev:  # node_failure: the unit failure comes first
            inc.critical = True
        if ev.type == "nodes" and inc.not_ready is None:
            inc.not_ready = ev
        inc.extend(t + cfg.node_window_ns)
        self.publish(inc, out)

    def on_unit(self, t: int, ev: Any, out: list[Correlation]) -> None:
        if ev.action != "failed":
            return
        full = as_event(ev)
        node = full.context.node
        if not node:
            self.orphan(full)
            return
        self.node_scoped_cause(t, full, node, out, critical=text.unit_name(full) in self.cfg.critical_units)

    def on_node(self, t: int, ev: Any, out: list[Correlation]) -> None:
        full = as_event(ev)
        k = full.k8s
        node = full.context.node or (k.name if k is not None else "")
        if not node:
            return
        conditions = k.conditions if k is not None else {}
        previous = self.topo.node_conditions(node, conditions, full.action == "deleted")
        ready = conditions.get("Ready", "")
        if full.action == "not_ready" or (
            ready in NOT_READY and previous.get("Ready", "True") not in NOT_READY
        ):
            self.node_scoped_cause(t, full, node, out)
        rising = [c for c in PRESSURE_CONDITIONS if conditions.get(c) == "True" and previous.get(c) != "True"]
        if rising:
            self.pressure_rises(t, full, node, rising, out)

    def pressure_rises(self, t: int, ev: Event, node: str, rising: list[str], out: list[Correlation]) -> None:
        cfg = self.cfg
        inc = self.pressure.get(node)
        if inc is not None and inc.accepts(t, cfg.pressure_window_ns):
            inc.add(ev, FOLLOWED, cfg.max_incident_events)
            inc.conditions.extend(c for c in rising if c not in inc.conditions)
            self.publish(inc, out)
            return
        inc = PressureIncident(ev, node, rising, cfg.pressure_window_ns)
        self.open(inc)
        self.index_one(inc, self.pressure, node)

    # --- Services ------------------------------------------------------------------------------

    def on_service(self, t: int, ev: Any, out: list[Correlation]) -> None:
        self.topo.service_event(ev)
        if ev.action == "unhealthy":
            self.service_impact(t, as_event(ev), out)

    def on_endpoints(self, t: int, ev: Any, out: list[Correlation]) -> None:
        k = k8s_payload(ev)
        if k is None or k.ready_endpoints != 0 or ev.action in ("created", "deleted"):
            return
        self.service_impact(t, as_event(ev), out)

    def service_impact(self, t: int, ev: Event, out: list[Correlation]) -> None:
        """A Service lost its endpoints: joins the incident whose failed pods it selects."""
        c = ev.context
        name = c.service or (ev.k8s.name if ev.k8s is not None else "")
        selector = dict(ev.k8s.selector) if ev.k8s is not None and ev.k8s.selector else {}
        selector = selector or self.topo.selector_of(c.namespace, name)
        best: Incident | None = None
        best_key = (-1, 0, 0)
        for inc in self.by_namespace.get(c.namespace, ()):
            window = self.cfg.perf_window_ns if isinstance(inc, PerfIncident) else self.cfg.cascade_window_ns
            key = (inc.service_priority, -inc.root.time, -inc.serial)
            if key > best_key and inc.service_match(ev, c.namespace, selector, window):
                best, best_key = inc, key
        if best is None:
            self.orphan(ev)
            return
        best.add(ev, SELECTED_BY_SERVICE, self.cfg.max_incident_events)
        best.services.append(ev)
        self.publish(best, out)

    # --- rollouts -------------------------------------------------------------------------------

    def on_deployment(self, t: int, ev: Any, out: list[Correlation]) -> None:
        full = as_event(ev)
        k = full.k8s
        c = full.context
        name = (k.name if k is not None else "") or (c.workload.name if c.workload is not None else "")
        if not name:
            return
        key = f"{c.namespace}/{name}"
        desired = k.desired_replicas if k is not None else 0
        available = k.available_replicas if k is not None else 0
        info = self.topo.deployment_event(key, full.action, desired, available)
        if info is None or full.action != "updated" or k is None:
            return
        cfg = self.cfg
        if k.reason == "TemplateChanged":
            old = frozenset(rs for rs, seen in info.replicasets.items() if seen < t - ROLLOUT_SKEW_NS)
            inc = DeployIncident(full, key, old, cfg.deploy_window_ns)
            self.open(inc)
            self.index_one(inc, self.deploys, key)
            return
        dep = self.deploys.get(key)
        if dep is None or not dep.accepts(t, cfg.deploy_window_ns):
            return
        if k.reason in STALL_REASONS or (desired > 0 and available < desired):
            dep.add(full, CAUSED, cfg.max_incident_events)
            dep.stalled = full
            self.publish(dep, out)

    def on_replicaset(self, t: int, ev: Any, out: list[Correlation]) -> None:
        if ev.action == "deleted":
            return
        c = ev.context
        k = ev.k8s
        rs = (k.uid or k.name) if k is not None else ""
        deployment = next((o.name for o in c.owners if o.kind == "Deployment"), "")
        if not deployment and c.workload is not None and c.workload.kind == "Deployment":
            deployment = c.workload.name
        if rs and deployment:
            self.topo.deployment(f"{c.namespace}/{deployment}").rs_seen(rs, t)

    # --- network and latency ------------------------------------------------------------------

    def on_interface(self, t: int, ev: Any, out: list[Correlation]) -> None:
        full = as_event(ev)
        if not is_loss(full, self.cfg):
            return
        node = full.context.node
        cfg = self.cfg
        inc = self.network.get(node)
        if inc is not None and inc.accepts(t, cfg.network_window_ns):
            inc.add(full, FOLLOWED, cfg.max_incident_events)
            inc.anchor = max(inc.anchor, t)
            inc.extend(t + cfg.network_window_ns)
        else:
            inc = NetworkIncident(full, node, cfg.network_window_ns)
            self.open(inc)
            self.index_one(inc, self.network, node)
        self.publish(inc, out)

    def on_retransmit(self, t: int, ev: Any, out: list[Correlation]) -> None:
        if not self.network:
            return
        ctx = ev.context
        node = ctx.node
        if not node:
            p = self.topo.resolve_pod(ctx)
            node = p.node if p is not None else ""
        inc = self.network.get(node)
        if inc is None or not inc.accepts(t, self.cfg.network_window_ns):
            return
        full = as_event(ev)
        if not inc.add(full, SAME_NODE, self.cfg.max_incident_events):
            return
        k = full.kernel
        inc.retransmits += (k.count or 1) if k is not None else 1
        c = full.context
        inc.pods.add(f"{c.namespace}/{c.pod}" if c.pod else node)
        self.publish(inc, out)

    def on_latency(self, t: int, ev: Any, out: list[Correlation]) -> None:
        k = ev.kernel
        if k is None or k.latency_ns < self.cfg.latency_threshold_ns:
            return
        full = as_event(ev)
        p = self.topo.resolve_pod(full.context)
        if p is None:
            return
        cfg = self.cfg
        inc = self.perf.get(p.workload)
        if inc is not None and inc.accepts_latency(t, cfg):
            inc.latency(full, cfg)
            self.publish(inc, out)
            return
        track = self.latency_track.setdefault(p.workload, [])
        track.append(full)
        while t - track[0].time > cfg.latency_window_ns:
            track.pop(0)
        if len(track) >= cfg.latency_min_events:
            del self.latency_track[p.workload]
            inc = PerfIncident(track, p.workload, cfg)
            self.open(inc)
            self.index_one(inc, self.perf, p.workload)
            self.publish(inc, out)
