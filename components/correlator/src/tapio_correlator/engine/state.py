"""Engine state: open incidents and their indexes, trackers, orphans; publishing, closing, sweeping."""

from __future__ import annotations

from collections import deque
from typing import TypeVar, cast

from tapio.events.v1 import events_pb2
from tapio_common.model import Correlation, Event, K8sEvent, Severity
from tapio_common.model.fast import event_from_pb
from tapio_correlator.engine import text
from tapio_correlator.engine.cause import CauseIncident
from tapio_correlator.engine.config import EngineConfig
from tapio_correlator.engine.incident import (
    ROOT_CAUSE,
    FailedPod,
    Incident,
    Member,
    correlation_id,
    potential_issue,
    scope_key,
)
from tapio_correlator.engine.inputs import EventIn
from tapio_correlator.engine.nodes import NetworkIncident, PressureIncident
from tapio_correlator.engine.perf import PerfIncident
from tapio_correlator.engine.rollout import CrashIncident, DeployIncident
from tapio_correlator.engine.topology import Topology

IncidentT = TypeVar("IncidentT", bound=Incident)

SEVERE = frozenset({Severity.ERROR, Severity.CRITICAL})
STAT_NAMES = (
    "correlations",
    "potential_issues",
    "incidents_opened",
    "incidents_closed",
)


def as_event(ev: EventIn) -> Event:
    """The attrs Event of an attrs or protobuf event (converted only when a rule needs all of it)."""
    return ev if isinstance(ev, Event) else event_from_pb(ev)


def k8s_payload(ev: EventIn) -> K8sEvent | events_pb2.K8sEvent | None:
    """The k8s payload of an attrs or protobuf event, None when it has another (or none)."""
    if isinstance(ev, Event):
        return ev.k8s
    return ev.k8s if ev.HasField("k8s") else None


class EngineState:
    """Everything the engine remembers; bounded by windows (incidents, trackers) and deletions."""

    def __init__(self, cfg: EngineConfig) -> None:
        self.cfg = cfg
        self.topo = Topology(cfg.max_pods)
        self.incidents: dict[int, Incident] = {}  # open incidents by serial (creation order)
        self.serial = 0
        self.oom_by_workload: dict[str, CauseIncident] = {}
        self.node_cause: dict[str, CauseIncident] = {}
        self.causes_by_node: dict[str, list[CauseIncident]] = {}
        self.deploys: dict[str, DeployIncident] = {}
        self.crashes: dict[str, CrashIncident] = {}
        self.perf: dict[str, PerfIncident] = {}
        self.pressure: dict[str, PressureIncident] = {}
        self.network: dict[str, NetworkIncident] = {}
        self.by_namespace: dict[str, list[Incident]] = {}
        self.crash_track: dict[str, list[Event]] = {}  # pod uid -> restarts not (yet) in an incident
        self.latency_track: dict[str, list[Event]] = {}  # workload -> slow connects
        self.orphans: deque[tuple[int, Event]] = deque()  # (deadline, event) severe, joined nothing
        self.orphan_ids: set[str] = set()
        # Failures and Service impacts that joined nothing, kept for a cause arriving late (or
        # stamped up to the clock skew after them): it takes them when it opens its incident.
        self.loose: deque[Event] = deque()
        # Ids of the events taken (id -> event time), oldest first: a redelivery is a no-op.
        self.seen: dict[str, int] = {}
        # buffered views found malformed only when a rule parsed them (skipped; the runner counts
        # them as dropped{reason="undecodable"}): their message was settled long before
        self.undecodable = 0
        self.seen_order: deque[str] = deque()
        self.clock = 0  # time of the latest processed event
        self.stats: dict[str, int] = dict.fromkeys(STAT_NAMES, 0)

    # --- incidents ---------------------------------------------------------------------------

    def open(self, inc: Incident) -> None:
        inc.deadline = inc.root.time + self.cfg.incident_max_age_ns
        inc.start = inc.root.time - self.cfg.clock_skew_ns
        inc.expires_at = min(inc.expires_at, inc.deadline)
        self.serial += 1
        inc.serial = self.serial
        self.incidents[inc.serial] = inc
        self.stats["incidents_opened"] += 1

    def index_one(self, inc: IncidentT, index: dict[str, IncidentT], key: str) -> None:
        """`index[key] = inc`, undone when the incident closes."""
        index[key] = inc
        # close() only compares identity and deletes: the element type does not matter there.
        inc.links.append((cast("dict[str, object]", index), key))

    def index_many(self, inc: IncidentT, index: dict[str, list[IncidentT]], key: str) -> None:
        """`inc` appended to `index[key]`, removed when the incident closes."""
        index.setdefault(key, []).append(inc)
        inc.multi.append((cast("dict[str, list[object]]", index), key))

    def note_failure(self, inc: Incident, pod: FailedPod, until: int) -> None:
        """Records a failed pod (Service impacts are matched against it) and keeps the incident open."""
        inc.note_failure(pod)
        if pod.namespace not in inc.namespaces:
            inc.namespaces.add(pod.namespace)
            self.index_many(inc, self.by_namespace, pod.namespace)
        inc.extend(until)

    def publish(self, inc: Incident, out: list[Correlation]) -> None:
        """Emits a new revision when the incident is publishable and changed since the last one."""
        v = inc.verdict(self.cfg)
        if v is None:
            return
        signature = (v.type, v.score, v.summary, len(inc.ids))
        if signature == inc.signature:
            return
        inc.signature = signature
        inc.revision += 1
        if inc.cid is None:
            # Fixed at the first publication: a later type change (precedence) updates it in place.
            inc.cid = correlation_id(v.type, scope_key(inc.root), inc.root.id)
        inc.last_verdict = v
        out.append(inc.build(v))
        self.stats["correlations"] += 1

    def close(self, inc: Incident, out: list[Correlation]) -> None:
        del self.incidents[inc.serial]
        for index, key in inc.links:
            if index.get(key) is inc:
                del index[key]
        for multi, key in inc.multi:
            entries = multi.get(key)
            if entries is not None:
                entries.remove(inc)
                if not entries:
                    del multi[key]
        self.stats["incidents_closed"] += 1
        if inc.cid is None and inc.potential_at_close():
            summary = text.potential_summary(inc.root, len(inc.ids), inc.last_time - inc.root.time)
            out.append(potential_issue(inc.members, summary, text.scope(inc.root)))
            self.stats["potential_issues"] += 1

    # --- orphans (severe events that joined nothing) ----------------------------------------------

    def orphan(self, ev: Event) -> None:
        if ev.severity in SEVERE:
            self.orphans.append((ev.time + self.cfg.potential_window_ns, ev))
            self.orphan_ids.add(ev.id)

    def adopt(self, ev: Event) -> None:
        self.orphan_ids.discard(ev.id)

    # --- delivery: ids already taken ------------------------------------------------------------

    def took(self, event_id: str, t: int) -> None:
        """Remembers an event id the engine acted on (bounded by age and by count)."""
        self.seen[event_id] = t
        order = self.seen_order
        order.append(event_id)
        if len(order) > self.cfg.max_seen_ids:
            self.seen.pop(order.popleft(), None)

    def _forget_seen(self, horizon: int) -> None:
        order, seen = self.seen_order, self.seen
        while order and seen.get(order[0], -1) < horizon:
            seen.pop(order.popleft(), None)

    # --- time ----------------------------------------------------------------------------------

    def sweep(self, now: int, out: list[Correlation]) -> None:
        """Closes what can no longer grow at `now`; reports orphans whose window passed."""
        grace = self.cfg.late_grace_ns
        if self.incidents:
            closing = now - grace
            for inc in [i for i in self.incidents.values() if i.expires_at < closing]:
                self.close(inc, out)
        if self.crash_track:
            horizon = now - self.cfg.crash_window_ns - grace
            for uid in [u for u, evs in self.crash_track.items() if evs[-1].time < horizon]:
                del self.crash_track[uid]
        if self.latency_track:
            horizon = now - self.cfg.latency_window_ns - grace
            for w in [w for w, evs in self.latency_track.items() if evs[-1].time < horizon]:
                del self.latency_track[w]
        self.topo.bury(now - max(2 * self.cfg.reorder_slack_ns, 10 * 1_000_000_000))
        loose = self.loose
        if loose:
            horizon = now - grace - max(self.cfg.cascade_window_ns, self.cfg.perf_window_ns)
            while loose and loose[0].time < horizon:
                loose.popleft()
        if self.seen_order:
            self._forget_seen(now - self.cfg.seen_ids_retention_ns)
        orphans = self.orphans
        while orphans and orphans[0][0] < now:
            _, ev = orphans.popleft()
            if ev.id in self.orphan_ids:
                self.orphan_ids.discard(ev.id)
                summary = text.potential_summary(ev, 1, 0)
                out.append(potential_issue([Member(ev, ROOT_CAUSE)], summary, text.scope(ev)))
                self.stats["potential_issues"] += 1

    def open_correlations(self) -> list[Correlation]:
        """The latest revision of every open incident that has been published."""
        return [
            inc.build(inc.last_verdict)
            for inc in self.incidents.values()
            if inc.cid is not None and inc.last_verdict is not None
        ]

    def state_size(self) -> dict[str, int]:
        """Sizes of everything the engine holds (to check memory stays bounded)."""
        sizes = dict(self.topo.size())
        sizes.update(
            incidents=len(self.incidents),
            incident_events=sum(len(i.ids) for i in self.incidents.values()),
            indexes=len(self.oom_by_workload)
            + len(self.node_cause)
            + len(self.causes_by_node)
            + len(self.deploys)
            + len(self.crashes)
            + len(self.perf)
            + len(self.pressure)
            + len(self.network)
            + len(self.by_namespace),
            crash_trackers=sum(len(v) for v in self.crash_track.values()),
            latency_trackers=sum(len(v) for v in self.latency_track.values()),
            orphans=len(self.orphans),
            loose=len(self.loose),
            seen_ids=len(self.seen),
        )
        return sizes
