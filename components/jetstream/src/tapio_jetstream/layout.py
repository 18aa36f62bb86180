"""The JetStream stream layout of CONTRACT.md §3 as data: streams, durable consumers, and the plan to
reach it (pure). Read by `tapio_jetstream.streams` (apply, status), tapio-admin and the consumer runtime."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from tapio_common import subjects as names
from tapio_common.subjects import DEFAULT as DEFAULT_SUBJECTS
from tapio_common.subjects import Subjects

DAY = 86400.0
GB = 1_000_000_000
MB = 1_000_000

# Stream names of the default installation (prefix `tapio`); another prefix's streams are
# `Subjects(prefix).stream(kind)`, e.g. BLUE_EVENTS (tapio_common.subjects).
EVENTS = DEFAULT_SUBJECTS.events_stream  # TAPIO_EVENTS
CORRELATIONS = DEFAULT_SUBJECTS.correlations_stream  # TAPIO_CORRELATIONS
ALERTS = DEFAULT_SUBJECTS.alerts_stream  # TAPIO_ALERTS
PROCESSED = DEFAULT_SUBJECTS.processed_stream  # TAPIO_PROCESSED
DLQ = DEFAULT_SUBJECTS.dlq_stream  # TAPIO_DLQ

CORRELATOR = "correlator"
PIPELINE = "pipeline"
SIEM_EXPORTER = "siem-exporter"

MAX_DELIVER = 5
ACK_WAIT = 30.0
MAX_ACK_PENDING = 20_000

INCOMPATIBLE_STREAM_FIELDS = ("storage", "retention")
INCOMPATIBLE_CONSUMER_FIELDS = ("ack_policy", "deliver_policy", "deliver_subject")


@attrs.frozen
class StreamSpec:
    """One stream; -1 means unlimited. Durations in seconds, sizes in bytes."""

    name: str
    subjects: tuple[str, ...]
    max_age: float
    max_msgs: int = -1
    max_bytes: int = -1
    max_msg_size: int = 1024 * 1024
    storage: str = "file"
    replicas: int = 1
    duplicate_window: float = 120.0
    discard: str = "old"
    retention: str = "limits"
    # Direct gets (`$JS.API.DIRECT.GET`) answer reads of stored messages without a consumer: the
    # correlator's restart catch-up reads back this way, so its user needs no consumer-create grant.
    allow_direct: bool = True
    # Atomic batch publish (nats-server 2.12+, `Nats-Batch-Id`): several messages stored all or none
    # with one publish ack; the SIEM exporter publishes its alerts this way (Publisher.publish_atomic).
    allow_atomic: bool = False
    description: str = ""

    def comparable(self) -> dict[str, Any]:
        """The fields apply_layout reconciles, by name."""
        return {
            "subjects": tuple(sorted(self.subjects)),
            "max_age": float(self.max_age),
            "max_msgs": self.max_msgs,
            "max_bytes": self.max_bytes,
            "max_msg_size": self.max_msg_size,
            "storage": self.storage,
            "replicas": self.replicas,
            "duplicate_window": float(self.duplicate_window),
            "discard": self.discard,
            "retention": self.retention,
            "allow_direct": self.allow_direct,
            "allow_atomic": self.allow_atomic,
        }


# What the correlator's rules read of TAPIO_EVENTS (its durable consumer's filter subjects): every
# Kubernetes, systemd and CNI event (their subjects do not carry the severity, and any of them may be
# a lone error), the eBPF kinds a rule or the topology uses at every severity, and every other eBPF
# kind at error and critical only (a lone error becomes potential_issue). So the high-rate eBPF kinds
# no rule reads (process_exec, ...) never reach it. Filters of one consumer may not overlap
# (nats-server 2.10+), hence the kinds x severities below instead of `ebpf.*.>`. A test of the
# correlator checks this list against the engine's relevant event types.
CORRELATOR_EBPF_KINDS = (
    "network",
    "oom_kill",
    "tcp_connect",
    "tcp_connect_latency",
    "tcp_reset",
    "tcp_retransmit",
)


def correlator_subjects(subjects: Subjects = DEFAULT_SUBJECTS) -> tuple[str, ...]:
    """The correlator's filter subjects in the installation `subjects` (`<prefix>.events...`)."""
    ev = subjects.events
    return (
        f"{ev}.k8s.>",
        f"{ev}.systemd.>",
        f"{ev}.cni.>",
        *(
            f"{ev}.ebpf.{kind}.{sev}"
            for kind in CORRELATOR_EBPF_KINDS
            for sev in ("debug", "info", "warning")
        ),
        f"{ev}.ebpf.*.error",
        f"{ev}.ebpf.*.critical",
    )


CORRELATOR_SUBJECTS = correlator_subjects()
"""The correlator's filter subjects of the default installation (prefix `tapio`)."""


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: `*` is one token, a trailing `>` one or more tokens."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


def subject_taker(spec: ConsumerSpec, most: int = 65536) -> Callable[[str], bool]:
    """`spec.takes`, remembered per subject (a consumer sees a few thousand distinct subjects; the
    patterns cost ~0.3 us each to match). Forgets everything past `most` subjects."""
    known: dict[str, bool] = {}

    def takes(subject: str) -> bool:
        answer = known.get(subject)
        if answer is None:
            if len(known) >= most:
                known.clear()
            answer = known[subject] = spec.takes(subject)
        return answer

    return takes


@attrs.frozen
class ConsumerSpec:
    """A durable pull consumer with explicit ack; after `max_deliver` deliveries the consumer's
    owner sends the message to `<prefix>.dlq.{component}` and terminates it (CONTRACT.md §3).

    `filter_subject` is the one filter; `filter_subjects`, when set, are several (non-overlapping,
    nats-server 2.10+) instead of it. `filter_at` says who applies them: "server" (the durable is
    created with them) or "client" (the durable takes `filter_subject` alone, the stream's own
    subjects, and the runtime acks a message it does not take before decoding it). nats-server
    finds the next message of a durable with several filters by walking a store block's subjects
    against each filter, which costs it 100-230 us a message (2.15) or 1.3-1.7 ms (2.10) once the
    consumer lags behind, against 12-27 us with one filter (`bench:nats_cost`,
    components/jetstream/README.md): a client-side filter lets a lagging consumer catch up."""

    stream: str
    durable: str
    filter_subject: str
    ack_wait: float = ACK_WAIT
    max_deliver: int = MAX_DELIVER
    max_ack_pending: int = MAX_ACK_PENDING
    ack_policy: str = "explicit"
    deliver_policy: str = "all"
    description: str = ""
    filter_subjects: tuple[str, ...] = ()
    filter_at: str = attrs.field(default="server", validator=attrs.validators.in_(("server", "client")))

    @property
    def subjects(self) -> tuple[str, ...]:
        """The subjects this consumer takes (its filters)."""
        return self.filter_subjects or (self.filter_subject,)

    @property
    def server_subjects(self) -> tuple[str, ...]:
        """The filters the durable consumer is created with (see `filter_at`)."""
        return self.subjects if self.filter_at == "server" else (self.filter_subject,)

    def takes(self, subject: str) -> bool:
        """Whether a message on `subject` reaches this consumer."""
        return any(subject_matches(f, subject) for f in self.subjects)

    def comparable(self) -> dict[str, Any]:
        return {
            "filter_subjects": tuple(sorted(self.server_subjects)),
            "ack_wait": float(self.ack_wait),
            "max_deliver": self.max_deliver,
            "max_ack_pending": self.max_ack_pending,
            "ack_policy": self.ack_policy,
            "deliver_policy": self.deliver_policy,
            "deliver_subject": None,
        }


@attrs.frozen
class Layout:
    streams: tuple[StreamSpec, ...]
    consumers: tuple[ConsumerSpec, ...]
    subjects: Subjects = DEFAULT_SUBJECTS

    def stream(self, name: str) -> StreamSpec:
        for s in self.streams:
            if s.name == name:
                return s
        raise KeyError(name)

    def consumer(self, durable: str) -> ConsumerSpec:
        """The durable consumer named `durable` (correlator, pipeline, siem-exporter)."""
        for c in self.consumers:
            if c.durable == durable:
                return c
        raise KeyError(durable)


def production_layout(replicas: int = 1, scale: float = 1.0, subjects: Subjects = DEFAULT_SUBJECTS) -> Layout:
    """CONTRACT.md §3: production limits with `replicas` (3 in a cluster, 1 on a single server).
    `scale` multiplies the message and byte limits (tests use e.g. 0.001; ages are kept).
    `subjects`: the installation (NATS_SUBJECT_PREFIX) whose streams, subjects and filters these are."""
    if replicas < 1:
        raise ValueError(f"replicas must be >= 1, not {replicas}")

    def n(value: int) -> int:
        return max(1, int(value * scale))

    x = subjects
    streams = (
        StreamSpec(x.events_stream, (x.all(names.EVENTS),), 7 * DAY, n(10_000_000), n(10 * GB), 1024 * 1024,
                   replicas=replicas, description="Events of every collector (CONTRACT.md §1)"),
        StreamSpec(x.correlations_stream, (x.all(names.CORRELATIONS),), 30 * DAY, replicas=replicas,
                   description="Correlations found by the engine"),
        StreamSpec(x.alerts_stream, (x.all(names.ALERTS),), 30 * DAY, replicas=replicas, allow_atomic=True,
                   description="Alerts for the SIEM exporters"),
        StreamSpec(x.processed_stream, (x.all(names.PROCESSED),), 3 * DAY, replicas=replicas,
                   description="Enriched, filtered, routed events of the pipeline"),
        StreamSpec(x.dlq_stream, (x.all(names.DLQ),), 30 * DAY, replicas=replicas,
                   description="Messages a consumer could not handle (Tapio-Error, Tapio-Stream-Seq)"),
    )  # fmt: skip
    consumers = (
        ConsumerSpec(
            x.events_stream,
            CORRELATOR,
            x.all(names.EVENTS),
            description="Correlation engine",
            filter_subjects=correlator_subjects(x),
            filter_at="client",  # several filters make a lagging durable dear to the server (above)
        ),
        ConsumerSpec(x.events_stream, PIPELINE, x.all(names.EVENTS), description="Pipeline processor"),
        ConsumerSpec(
            x.correlations_stream, SIEM_EXPORTER, x.all(names.CORRELATIONS), description="SIEM exporter"
        ),
    )
    return Layout(streams, consumers, subjects)


@attrs.frozen
class Change:
    """What apply does (or would do) to one stream or consumer."""

    kind: str  # stream | consumer
    name: str  # stream name, or stream/durable
    action: str  # create | update | unchanged | refused
    changes: tuple[str, ...] = ()  # "field: old -> new"


@attrs.frozen
class ApplyReport:
    changes: tuple[Change, ...]
    dry_run: bool = False

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for c in self.changes:
            counts[c.action] = counts.get(c.action, 0) + 1
        verb = "would " if self.dry_run else ""
        return f"{verb}" + ", ".join(
            f"{a} {counts[a]}" for a in ("create", "update", "unchanged") if a in counts
        )


def diff(wanted: Mapping[str, Any], current: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, current, wanted) for every reconciled field that differs."""
    return [(k, current.get(k), v) for k, v in wanted.items() if current.get(k) != v]


def plan(kind: str, name: str, wanted: Mapping[str, Any], current: Mapping[str, Any] | None) -> Change:
    """create when missing, update when a field differs, refused when an incompatible field differs."""
    if current is None:
        return Change(kind, name, "create")
    delta = diff(wanted, current)
    if not delta:
        return Change(kind, name, "unchanged")
    incompatible = INCOMPATIBLE_STREAM_FIELDS if kind == "stream" else INCOMPATIBLE_CONSUMER_FIELDS
    refused = [d for d in delta if d[0] in incompatible]
    chosen = refused or delta
    return Change(
        kind,
        name,
        "refused" if refused else "update",
        tuple(f"{k}: {_fmt(old)} -> {_fmt(new)}" for k, old, new in chosen),
    )


def _fmt(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)
