"""Per-event-type handlers: topology updates, causes, and the failures they hand to the routing.

Fed by the engine (`engine.Engine`) in time order. A handler receives (time, event, out): the
event is the attrs `Event` or the decoded protobuf `Event` (same field names; the frequent paths
read fields directly and convert only what a rule keeps); it appends the correlations it creates
or updates to `out` and returns whether it acted on the event (taken events are remembered by id,
so a redelivery is a no-op).
"""

from __future__ import annotations

from collections.abc import Callable

from tapio_common.model import Correlation, Event
from tapio_correlator.engine import cause, text
from tapio_correlator.engine.cause import CauseIncident
from tapio_correlator.engine.incident import CAUSED, FOLLOWED, SAME_NODE, SAME_OWNER, SAME_POD
from tapio_correlator.engine.inputs import EventIn
from tapio_correlator.engine.nodes import PRESSURE_CONDITIONS, NetworkIncident, PressureIncident, is_loss
from tapio_correlator.engine.perf import PerfIncident
from tapio_correlator.engine.records import PodInfo
from tapio_correlator.engine.rollout import STALL_REASONS, DeployIncident
from tapio_correlator.engine.routing import FAILURES, ROLLOUT_SKEW_NS, Routing, transient_pod
from tapio_correlator.engine.state import as_event, k8s_payload
from tapio_correlator.engine.views import context_of, parsed
from tapio_jetstream.errors import DecodeError

Handler = Callable[[int, EventIn, list[Correlation]], bool]

NOT_READY = frozenset({"False", "Unknown"})
# Kernel OOM kill, the pod's oom_killed, its OOMKilled restart: counted as one kill (see CauseIncident).
KERNEL_KILL, POD_KILL, OOM_RESTART = 0, 1, 2
CONNECT_FAILURES = frozenset({"failed", "refused", "timeout", "unreachable"})


class Handlers(Routing):
    """One method per event type; see CORRELATION.md for the rules and `precedence` for their order."""

    def handlers(self) -> dict[str, Handler]:
        """The handler of each event type a rule or the topology uses (`lone`: any other severe event)."""
        return {
            "pods": self.on_pod,
            "nodes": self.on_node,
            "services": self.on_service,
            "endpoints": self.on_endpoints,
            "deployments": self.on_deployment,
            "replicasets": self.on_replicaset,
            "unit": self.on_unit,
            "oom_kill": self.on_oom_kill,
            "tcp_retransmit": self.on_retransmit,
            "tcp_reset": self.on_reset,
            "tcp_connect": self.on_connect,
            "tcp_connect_latency": self.on_latency,
            "network": self.on_latency,
            "interface": self.on_interface,
            "lone": self.on_lone,
        }

    # --- pods -----------------------------------------------------------------------------------

    def on_pod(self, t: int, ev: EventIn, out: list[Correlation]) -> bool:
        action = ev.action
        rec = self.topo.pod_event(t, ev, action)
        if action not in FAILURES:
            return False
        full = as_event(ev)
        p = rec if rec is not None else transient_pod(full)
        k = full.k8s
        if action == "oom_killed" or (k is not None and k.termination_reason == "OOMKilled"):
            return self.oom(t, full, p, POD_KILL if action == "oom_killed" else OOM_RESTART, out)
        return self.pod_failure(t, full, p, out)

    def on_lone(self, t: int, ev: EventIn, out: list[Correlation]) -> bool:
        """A severe event of a type no rule uses (core k8s Events, a signal-killed process, ...)."""
        full = as_event(ev)
        self.orphan(full)
        return True

    # --- causes ------------------------------------------------------------------------------

    def oom(self, t: int, ev: Event, p: PodInfo, slot: int, out: list[Correlation]) -> bool:
        """An OOM kill (kernel or pod view) or an OOMKilled restart of pod `p`."""
        cfg = self.cfg
        inc = self.oom_by_workload.get(p.workload)
        relation = SAME_POD if inc is not None and p.uid in inc.kills else SAME_OWNER
        if inc is not None and inc.displaced_by(ev, cfg.oom_repeat_window_ns, cfg.clock_skew_ns):
            old = inc.root
            same = old.context.pod_uid == ev.context.pod_uid
            inc.reroot(ev, SAME_POD if same else SAME_OWNER, cfg.clock_skew_ns, cfg.incident_max_age_ns)
            self._on_node(inc, p.node)
        elif inc is not None and inc.start <= t <= inc.anchor + cfg.oom_repeat_window_ns:
            if not inc.add(ev, relation, cfg.max_incident_events):
                return False
            inc.anchor = max(inc.anchor, t)
            self._on_node(inc, p.node)
        else:
            inc = CauseIncident(ev, cause.OOM, p.node, p.workload, cfg.cascade_window_ns)
            self.open(inc)
            self.index_one(inc, self.oom_by_workload, p.workload)
            if p.node:
                self.index_many(inc, self.causes_by_node, p.node)
        self.adopt(ev)
        inc.add_kill(p.uid, slot, t)
        self.note_failure(inc, self.failed_pod(p, t, ev), t + cfg.cascade_window_ns)
        self.publish(inc, out)
        if inc.root is ev:
            self.adopt_loose(inc.start, out)
        return True

    def _on_node(self, inc: CauseIncident, node: str) -> None:
        if node and node not in inc.nodes:
            inc.nodes.add(node)
            self.index_many(inc, self.causes_by_node, node)

    def on_oom_kill(self, t: int, ev: EventIn, out: list[Correlation]) -> bool:
        full = as_event(ev)
        c = full.context
        p = self.topo.resolve_pod(c)
        if p is None and (c.pod or c.pod_uid):
            p = transient_pod(full)
        if p is not None:
            return self.oom(t, full, p, KERNEL_KILL, out)
        if c.node:
            return self.node_scoped_cause(t, full, c.node, out)
        self.orphan(full)
        return True

    def node_scoped_cause(
        self, t: int, ev: Event, node: str, out: list[Correlation], critical: bool = False
    ) -> bool:
        """A cause scoped to a node: unit failed, node not ready, a node-level OOM kill."""
        cfg = self.cfg
        inc = self.node_cause.get(node)
        if inc is not None and inc.displaced_by(ev, cfg.node_window_ns, cfg.clock_skew_ns):
            inc.reroot(ev, CAUSED, cfg.clock_skew_ns, cfg.incident_max_age_ns)
            inc.critical = critical
        elif inc is not None and inc.start <= t <= inc.anchor + cfg.node_window_ns:
            if not inc.add(ev, CAUSED, cfg.max_incident_events):
                return False
            inc.anchor = max(inc.anchor, t)
        else:
            inc = CauseIncident(ev, cause.NODE, node, "", cfg.node_window_ns)
            inc.critical = critical
            self.open(inc)
            self.index_one(inc, self.node_cause, node)
            self.index_many(inc, self.causes_by_node, node)
        self.adopt(ev)
        if ev.type == "nodes" and (inc.not_ready is None or ev.time < inc.not_ready.time):
            inc.not_ready = ev
        inc.extend(t + cfg.node_window_ns)
        self.publish(inc, out)
        if inc.root is ev:
            self.adopt_loose(inc.start, out)
        return True

    def on_unit(self, t: int, ev: EventIn, out: list[Correlation]) -> bool:
        full = as_event(ev)
        if full.action != "failed":
            return self.on_lone(t, full, out)  # a severe state other than failed
        node = full.context.node
        if not node:
            self.orphan(full)
            return True
        critical = text.unit_name(full) in self.cfg.critical_units
        return self.node_scoped_cause(t, full, node, out, critical=critical)

    def on_node(self, t: int, ev: EventIn, out: list[Correlation]) -> bool:
        full = as_event(ev)
        k = full.k8s
        node = full.context.node or (k.name if k is not None else "")
        if not node:
            return False
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
        return True

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
        self.adopt_loose(inc.start, out)

    # --- Services ------------------------------------------------------------------------------

    def on_service(self, t: int, ev: EventIn, out: list[Correlation]) -> bool:
        self.topo.service_event(ev)
        if ev.action == "unhealthy":
            return self.service_impact(t, as_event(ev), out)
        return False

    def on_endpoints(self, t: int, ev: EventIn, out: list[Correlation]) -> bool:
        k = k8s_payload(ev)
        if k is None or k.ready_endpoints != 0 or ev.action in ("created", "deleted"):
            return False
        return self.service_impact(t, as_event(ev), out)

    # --- rollouts -------------------------------------------------------------------------------

    def on_deployment(self, t: int, ev: EventIn, out: list[Correlation]) -> bool:
        full = as_event(ev)
        k = full.k8s
        c = full.context
        name = (k.name if k is not None else "") or (c.workload.name if c.workload is not None else "")
        if not name:
            return False
        key = f"{c.namespace}/{name}"
        desired = k.desired_replicas if k is not None else 0
        available = k.available_replicas if k is not None else 0
        info = self.topo.deployment_event(key, full.action, desired, available)
        if info is None or full.action != "updated" or k is None:
            return True
        cfg = self.cfg
        if k.reason == "TemplateChanged":
            old = frozenset(rs for rs, seen in info.replicasets.items() if seen < t - ROLLOUT_SKEW_NS)
            inc = DeployIncident(full, key, old, cfg.deploy_window_ns)
            self.open(inc)
            self.index_one(inc, self.deploys, key)
            self.adopt_loose(inc.start, out)
            return True
        dep = self.deploys.get(key)
        if dep is None or not dep.accepts(t, cfg.deploy_window_ns):
            return True
        if k.reason in STALL_REASONS or (desired > 0 and available < desired):
            dep.add(full, CAUSED, cfg.max_incident_events)
            if dep.stalled is None:
                dep.stalled = full
            self.publish(dep, out)
        return True

    def on_replicaset(self, t: int, ev: EventIn, out: list[Correlation]) -> bool:
        if ev.action == "deleted":
            return False
        full = as_event(ev)
        c = full.context
        k = full.k8s
        rs = (k.uid or k.name) if k is not None else ""
        deployment = next((o.name for o in c.owners if o.kind == "Deployment"), "")
        if not deployment and c.workload is not None and c.workload.kind == "Deployment":
            deployment = c.workload.name
        if rs and deployment:
            self.topo.deployment(f"{c.namespace}/{deployment}").rs_seen(rs, t)
        return True

    # --- network, connections and latency -------------------------------------------------------

    def on_interface(self, t: int, ev: EventIn, out: list[Correlation]) -> bool:
        full = as_event(ev)
        if not is_loss(full, self.cfg):
            return False
        node = full.context.node
        cfg = self.cfg
        inc = self.network.get(node)
        if inc is not None and inc.accepts(t, cfg.network_window_ns):
            if not inc.add(full, FOLLOWED, cfg.max_incident_events):
                return False
            inc.anchor = max(inc.anchor, t)
            inc.extend(t + cfg.network_window_ns)
        else:
            inc = NetworkIncident(full, node, cfg.network_window_ns)
            self.open(inc)
            self.index_one(inc, self.network, node)
        self.publish(inc, out)
        return True

    def on_reset(self, t: int, ev: EventIn, out: list[Correlation]) -> bool:
        """A TCP reset: connection evidence toward its destination, and a retransmit's evidence."""
        taken = self.topo.has_addresses() and self._connection(t, ev, out)
        return self.on_retransmit(t, ev, out) or taken

    def on_retransmit(self, t: int, ev: EventIn, out: list[Correlation]) -> bool:
        """A TCP retransmit (or reset): joins the network_degradation open on its node."""
        if not self.network:
            return False
        taken = False
        try:
            ctx = context_of(ev)  # buffered as a view (`Engine.process_view`): its context parsed alone
        except DecodeError:
            self.undecodable += 1  # never raised into the processing of a later message
            return taken
        node = ctx.node
        p = None
        if not node or not ctx.pod:  # an eBPF event may name its pod by uid, container or cgroup only
            p = self.topo.resolve_pod(ctx)
            node = node or (p.node if p is not None else "")
        inc = self.network.get(node)
        if inc is None or not inc.accepts(t, self.cfg.network_window_ns):
            return taken
        try:
            full = as_event(parsed(ev))
        except DecodeError:
            self.undecodable += 1
            return taken
        if not inc.add(full, SAME_NODE, self.cfg.max_incident_events):
            return taken
        k = full.kernel
        inc.retransmits += (k.count or 1) if k is not None else 1
        c = full.context
        if c.pod:
            inc.pods.add(f"{c.namespace}/{c.pod}")
        elif p is not None and p.name:
            inc.pods.add(f"{p.namespace}/{p.name}")
        else:
            inc.pods.add(c.pod_uid or node)
        self.publish(inc, out)
        return True

    def on_connect(self, t: int, ev: EventIn, out: list[Correlation]) -> bool:
        """A failed TCP connect (refused, timed out): connection evidence toward its destination."""
        if ev.action not in CONNECT_FAILURES or not self.topo.has_addresses():
            return False
        return self._connection(t, ev, out)

    def _connection(self, t: int, ev: EventIn, out: list[Correlation]) -> bool:
        full = as_event(ev)
        k = full.kernel
        if k is None or not k.daddr:
            return False
        return self.note_connection(t, full, k.daddr, out)

    def on_latency(self, t: int, ev: EventIn, out: list[Correlation]) -> bool:
        full = as_event(ev)
        k = full.kernel
        if k is None or k.latency_ns < self.cfg.latency_threshold_ns:
            return False
        taken = self.topo.has_addresses() and bool(k.daddr) and self.note_connection(t, full, k.daddr, out)
        workloads = self.latency_workloads(full)
        for workload in workloads:
            self.slow_connect(t, full, workload, out)
        return taken or bool(workloads)

    def latency_workloads(self, ev: Event) -> list[str]:
        """The workloads a slow connect counts for: its source pod's, and its destination's
        ("toward a workload": the Service cluster IP or pod IP it went to)."""
        found: list[str] = []
        p = self.topo.resolve_pod(ev.context)
        if p is not None and p.workload:
            found.append(p.workload)
        k = ev.kernel
        if k is not None and k.daddr and self.topo.has_addresses():
            dest = self.topo.workload_at(k.daddr)
            if dest and dest not in found:
                found.append(dest)
        return found

    def slow_connect(self, t: int, ev: Event, workload: str, out: list[Correlation]) -> None:
        cfg = self.cfg
        inc = self.perf.get(workload)
        if inc is not None and inc.displaced_by(ev, cfg.latency_window_ns, cfg.clock_skew_ns):
            inc.reroot(ev, SAME_OWNER, cfg.clock_skew_ns, cfg.incident_max_age_ns)
            inc.latency(ev, cfg)
            self.publish(inc, out)
            self.adopt_loose(inc.start, out)
            return
        if inc is not None and inc.accepts_latency(t, cfg):
            inc.latency(ev, cfg)
            self.publish(inc, out)
            return
        track = self.latency_track.setdefault(workload, [])
        if any(e.id == ev.id for e in track):
            return
        track.append(ev)
        track.sort(key=lambda e: e.time)
        while track[-1].time - track[0].time > cfg.latency_window_ns:
            track.pop(0)
        if len(track) >= cfg.latency_min_events:
            del self.latency_track[workload]
            new = PerfIncident(track, workload, cfg)
            self.open(new)
            self.index_one(new, self.perf, workload)
            self.publish(new, out)
            self.adopt_loose(new.start, out)


__all__ = ["EventIn", "Handler", "Handlers"]
