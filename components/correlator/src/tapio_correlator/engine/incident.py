"""Incidents under construction: members with their relation to the root cause, ids, revisions."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import ClassVar, NamedTuple

from tapio_common.model import Confidence, Context, Correlation, Event, Evidence, Severity
from tapio_correlator.engine.config import EngineConfig

# Relations of an event to the root cause (Evidence.relation) and their weights.
ROOT_CAUSE = "root_cause"
CAUSED = "caused"
FOLLOWED = "followed"
SAME_POD = "same_pod"
SAME_OWNER = "same_owner"
SAME_NODE = "same_node"
NEW_REPLICASET = "new_replicaset"
SELECTED_BY_SERVICE = "selected_by_service"
DEPENDS_ON = "depends_on"  # a caller of a Service that went down
CONNECTS_TO = "connects_to"  # kernel evidence that a caller connects to that Service
WEIGHTS = {
    ROOT_CAUSE: 1.0,
    CAUSED: 0.9,
    NEW_REPLICASET: 0.9,
    SAME_POD: 0.9,
    SELECTED_BY_SERVICE: 0.8,
    SAME_OWNER: 0.8,
    SAME_NODE: 0.7,
    DEPENDS_ON: 0.7,
    CONNECTS_TO: 0.6,
    FOLLOWED: 0.6,
}

# Among events of one incident stamped within the clock skew of each other, the cause-class one is
# the root: a failed unit before a node, a kernel OOM kill before the pod's view of it, ...
CAUSE_RANK = {
    "unit": 0,
    "oom_kill": 1,
    "nodes": 2,
    "deployments": 3,
    "replicasets": 4,
    "interface": 5,
    "pods": 6,
    "tcp_connect_latency": 7,
    "network": 7,
    "tcp_retransmit": 8,
    "tcp_reset": 8,
    "services": 9,
    "endpoints": 9,
}
OTHER_RANK = 10

POTENTIAL_ISSUE = "potential_issue"
_SEVERE = frozenset({Severity.ERROR, Severity.CRITICAL})


def correlation_id(type_: str, scope_key: str, root_id: str) -> str:
    """Deterministic id (UUID-shaped): a hash of type + scope + root cause event id."""
    h = hashlib.sha256(f"{type_}\x1f{scope_key}\x1f{root_id}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def scope_key(ev: Event) -> str:
    """The scope part of an incident's id: where its root cause happened."""
    c = ev.context
    return f"{c.cluster}/{c.namespace}/{c.node}/{c.pod}"


class Verdict(NamedTuple):
    """What an incident currently is: type, score (confidence follows), summary and scope."""

    type: str
    score: float
    summary: str
    scope: Context


class Member:
    """One event of an incident and how it relates to the root cause."""

    __slots__ = ("event", "relation", "weight")

    def __init__(self, event: Event, relation: str) -> None:
        self.event = event
        self.relation = relation
        self.weight = WEIGHTS.get(relation, 0.5)


class FailedPod:
    """A pod that failed inside an incident: what a Service impact is matched against."""

    __slots__ = ("labels", "last_fail", "name", "namespace", "node", "uid", "workload")

    def __init__(
        self,
        uid: str,
        namespace: str,
        name: str,
        node: str,
        labels: Mapping[str, str],
        workload: str,
        t: int,
    ) -> None:
        self.uid = uid
        self.namespace = namespace
        self.name = name
        self.node = node
        self.labels = labels
        self.workload = workload
        self.last_fail = t

    def selected_by(self, namespace: str, selector: dict[str, str]) -> bool:
        """Kubernetes semantics: same namespace, labels a superset of a non-empty selector."""
        if not selector or namespace != self.namespace:
            return False
        labels = self.labels
        return all(labels.get(k) == v for k, v in selector.items())


class Incident:
    """Base of every rule family's incident: members, failed pods, publication state."""

    family: ClassVar[str] = ""
    # Priority of this family when a Service impact could join several incidents.
    service_priority: ClassVar[int] = 0

    __slots__ = (
        "cid",
        "deadline",
        "expires_at",
        "failed",
        "ids",
        "last_time",
        "last_verdict",
        "links",
        "members",
        "multi",
        "namespaces",
        "overflow",
        "revision",
        "root",
        "serial",
        "services",
        "signature",
        "start",
    )

    def __init__(self, root: Event, expires_at: int) -> None:
        self.root = root
        self.members: list[Member] = [Member(root, ROOT_CAUSE)]
        self.ids: set[str] = {root.id}
        self.last_time = root.time
        self.expires_at = expires_at
        self.deadline = 2**63  # set when opened: root time + max age
        self.start = root.time  # earliest time an event may have and join (root time - clock skew)
        self.failed: dict[str, FailedPod] = {}
        self.services: list[Event] = []
        self.cid: str | None = None
        self.revision = 0
        self.signature: tuple[object, ...] = ()
        self.overflow = 0
        self.last_verdict: Verdict | None = None
        self.serial = 0
        # Index entries pointing at this incident (removed when it closes).
        self.links: list[tuple[dict[str, object], str]] = []  # (index, key): index[key] is self
        self.multi: list[tuple[dict[str, list[object]], str]] = []  # (index, key): self in index[key]
        self.namespaces: set[str] = set()

    def add(self, ev: Event, relation: str, cap: int) -> bool:
        """Adds a member (once per event id); beyond `cap` members it is only counted."""
        if ev.id in self.ids:
            return False
        if ev.time > self.last_time:
            self.last_time = ev.time
        if len(self.members) >= cap:
            self.overflow += 1
        else:
            self.ids.add(ev.id)
            self.members.append(Member(ev, relation))
        return True

    def reroot(self, ev: Event, relation: str, skew: int, max_age: int) -> None:
        """`ev` (arrived late, or stamped within the clock skew) is the true cause: it becomes the root.

        The former root stays a member with `relation`; the id (fixed at the first publication)
        does not change, so the next revision of the same incident names the new root.
        """
        old = self.members[0]
        old.relation = relation
        old.weight = WEIGHTS.get(relation, 0.5)
        self.members.insert(0, Member(ev, ROOT_CAUSE))
        self.ids.add(ev.id)
        self.root = ev
        self.start = min(self.start, ev.time - skew)
        self.deadline = min(self.deadline, ev.time + max_age)

    def displaced_by(self, ev: Event, window: int, skew: int) -> bool:
        """Whether `ev` is this incident's true cause rather than a member: stamped before its root
        (it arrived late) within `window`, or within the clock skew of it and of a cause class."""
        root = self.root
        if root.time - skew > ev.time:
            return root.time - ev.time <= window
        if ev.time - root.time <= skew:
            mine = (CAUSE_RANK.get(ev.type, OTHER_RANK), ev.time, ev.id)
            return mine < (CAUSE_RANK.get(root.type, OTHER_RANK), root.time, root.id)
        return False

    def full(self, cap: int) -> bool:
        return len(self.members) >= cap

    def extend(self, until: int) -> None:
        if until > self.expires_at:
            self.expires_at = min(until, self.deadline)

    def note_failure(self, pod: FailedPod) -> None:
        known = self.failed.get(pod.uid)
        if known is None:
            self.failed[pod.uid] = pod
        elif pod.last_fail > known.last_fail:
            known.last_fail = pod.last_fail

    def service_match(
        self, ev: Event, namespace: str, selector: dict[str, str], window: int, skew: int
    ) -> bool:
        """Whether a Service impact at ev.time selects a pod that failed here within `window` before."""
        t = ev.time
        return any(
            p.last_fail - skew <= t <= p.last_fail + window and p.selected_by(namespace, selector)
            for p in self.failed.values()
        )

    def verdict(self, cfg: EngineConfig) -> Verdict | None:
        """The incident as it stands, or None while it is not worth publishing."""
        raise NotImplementedError

    def potential_at_close(self) -> bool:
        """Whether an incident that never became publishable is reported as a potential_issue."""
        return any(m.event.severity in _SEVERE for m in self.members)

    def workloads_failed(self) -> set[str]:
        return {p.workload for p in self.failed.values()}

    def build(self, v: Verdict) -> Correlation:
        """The Correlation of this incident's current revision (ids and revision set by the caller)."""
        root, *rest = self.members
        rest.sort(key=lambda m: m.event.time)
        ordered = [root, *rest]
        ids = tuple(m.event.id for m in ordered)
        evidence = tuple(Evidence(m.event.id, m.relation, m.weight) for m in ordered)
        return Correlation(
            id=self.cid or "",
            type=v.type,
            confidence=Confidence.from_score(v.score),
            score=v.score,
            root_cause_event_id=self.root.id,
            event_ids=ids,
            scope=v.scope,
            summary=v.summary,
            evidence=evidence,
            first_seen=min(self.root.time, rest[0].event.time) if rest else self.root.time,
            last_seen=self.last_time,
            revision=self.revision,
        )


def potential_issue(members: list[Member], summary: str, scope: Context) -> Correlation:
    """A low-confidence correlation for an error that joined nothing (or nothing publishable)."""
    root = members[0].event
    score = 0.3 if root.severity is Severity.CRITICAL else 0.2
    rest = sorted(members[1:], key=lambda m: m.event.time)
    ordered = [members[0], *rest]
    ids = tuple(m.event.id for m in ordered)
    evidence = tuple(Evidence(m.event.id, m.relation, m.weight) for m in ordered)
    return Correlation(
        id=correlation_id(POTENTIAL_ISSUE, scope_key(root), root.id),
        type=POTENTIAL_ISSUE,
        confidence=Confidence.from_score(score),
        score=score,
        root_cause_event_id=root.id,
        event_ids=ids,
        scope=scope,
        summary=summary,
        evidence=evidence,
        first_seen=root.time,
        last_seen=max(m.event.time for m in ordered),
        revision=1,
    )
