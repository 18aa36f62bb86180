"""Cause incidents (OOM kill, failed unit, node not ready): cascading_failure, node_failure, repeated OOM.

One incident per cause. It collects the failures of linked pods (the OOM's workload and node, or
the node of a node-scoped cause) and Service impacts; what it is follows from what it holds:

- a Service selecting its failed pods lost its endpoints -> cascading_failure, high (precedence:
  also when the chain satisfies node_failure or repeated OOM);
- node-critical unit failed + node not ready -> node_failure (high with pods lost, else medium);
- pods of >= 2 workloads failed -> cascading_failure, medium;
- >= 2 OOM kills in the workload -> resource_pressure, medium;
- otherwise nothing yet (reported as potential_issue when its windows pass).
An incident that changes type keeps its id and gets a higher revision (see engine docs).
"""

from __future__ import annotations

from tapio_common.model import Event
from tapio_correlator.engine import text
from tapio_correlator.engine.config import EngineConfig
from tapio_correlator.engine.incident import Incident, Verdict

CASCADE = "cascading_failure"
NODE_FAILURE = "node_failure"
RESOURCE_PRESSURE = "resource_pressure"

OOM = "oom"
NODE = "node"


class CauseIncident(Incident):
    family = "cause"
    service_priority = 5

    __slots__ = ("anchor", "critical", "kills", "kind", "lost", "node", "nodes", "not_ready", "workload")

    def __init__(self, root: Event, kind: str, node: str, workload: str, window: int) -> None:
        super().__init__(root, root.time + window)
        self.kind = kind
        self.node = node  # the cause's node
        self.nodes: set[str] = {node} if node else set()
        self.workload = workload  # OOM: the victim's workload key
        self.anchor = root.time  # latest cause-class event: failures count from here
        self.critical = False  # a node-critical unit failed
        self.not_ready: Event | None = None
        # OOM kills per pod: the times seen by [kernel oom_kill, pod oom_killed, OOMKilled restart].
        self.kills: dict[str, list[list[int]]] = {}
        self.lost: set[str] = set()  # pods lost with the node (not_ready, evicted)

    def accepts_failure(self, t: int, window: int) -> bool:
        return self.start <= t <= self.anchor + window

    def add_kill(self, pod_uid: str, slot: int, t: int) -> None:
        slots = self.kills.setdefault(pod_uid, [[], [], []])
        slots[slot].append(t)

    def kill_count(self, until: int) -> int:
        """Distinct kills up to `until`: the kernel event, the pod event and the restart of one kill
        count once (the most any of the three views of a pod saw)."""
        return sum(max(sum(1 for x in s if x <= until) for s in slots) for slots in self.kills.values())

    def _cause_text(self) -> tuple[str, str]:
        """What happened first, and what to check."""
        root = self.root
        if root.type == "oom_kill":
            comm = root.kernel.comm if root.kernel is not None else ""
            where = f"pod {text.pod_ref(root)}" if root.context.pod else f"node {root.context.node}"
            what = f"kernel OOM kill of {comm or 'a process'} in {where}"
        elif root.type == "unit":
            unit = text.unit_name(root)
            return (
                f"{unit}.service failed on node {self.node}",
                f"Check {unit} on {self.node} (journalctl -u {unit}).",
            )
        elif root.type == "nodes":
            return (
                f"node {self.node} went NotReady",
                f"Check node {self.node} (kubelet, container runtime, network).",
            )
        else:
            what = f"OOMKilled container in pod {text.pod_ref(root)}"
        target = text.workload_name(self.workload) if self.workload else "the workload"
        return what, f"Check the memory limit and usage of {target}."

    def verdict(self, cfg: EngineConfig) -> Verdict | None:
        failed = self.failed
        workloads = self.workloads_failed()
        cause, hint = self._cause_text()
        pods = text.listing(f"{p.namespace}/{p.name}" for p in failed.values())
        if self.services:
            svc = self.services[0].context
            services = text.listing(f"{s.context.namespace}/{s.context.service}" for s in self.services)
            same_ns = all(p.namespace == svc.namespace for p in failed.values())
            score = 0.85 + (0.05 if same_ns else 0.0) + (0.05 if len(failed) >= 2 else 0.0)
            summary = (
                f"Cascading failure: {cause}; then {text.plural(len(failed), 'pod')} of "
                f"{text.listing(text.workload_name(w) for w in workloads)} failed ({pods}) and "
                f"Service {services} lost its ready endpoints. {hint}"
            )
            return Verdict(
                CASCADE,
                round(min(score, 0.95), 3),
                summary,
                text.scope(self.root, svc.namespace, self.node, svc.service, self.workload),
            )
        not_ready = self.not_ready
        if (
            self.kind == NODE
            and self.critical
            and not_ready is not None
            and not_ready.time - self.root.time <= cfg.node_window_ns  # the window runs from the unit
        ):
            after = text.duration(not_ready.time - self.root.time)
            lost = [p for uid, p in failed.items() if uid in self.lost]
            if lost:
                score = 0.85 + (0.05 if len(lost) >= 3 else 0.0)
                names = text.listing(f"{p.namespace}/{p.name}" for p in lost)
                effect = f"{text.plural(len(lost), 'pod')} on it were lost ({names})"
            else:
                score, effect = 0.7, "no pod on it is affected yet"
            summary = f"Node failure: {cause}, the node went NotReady {after} later and {effect}. {hint}"
            return Verdict(NODE_FAILURE, score, summary, text.scope(self.root, node=self.node))
        if len(workloads) >= 2:
            score = 0.7 + (0.05 if len(workloads) >= 3 else 0.0)
            summary = (
                f"Cascading failure: {cause}; then pods of {len(workloads)} workloads failed "
                f"({pods}); no Service lost all its endpoints. {hint}"
            )
            return Verdict(CASCADE, score, summary, text.scope(self.root, node=self.node))
        kills = self.kill_count(self.root.time + cfg.oom_repeat_window_ns)
        if self.kind == OOM and kills >= 2:
            span = text.duration(self.last_time - self.root.time)
            summary = (
                f"Repeated OOM kills: {kills} kills in {text.workload_name(self.workload)} within "
                f"{span} ({text.listing(text.pod_ref(m.event) for m in self.members)}). "
                f"Raise its memory limit or find the leak."
            )
            score = round(min(0.6 + 0.05 * (kills - 2), 0.75), 3)
            return Verdict(RESOURCE_PRESSURE, score, summary, text.scope(self.root, workload=self.workload))
        return None
