"""What the deployment must provide, written from the design: CONTRACT.md §2-3 and the seed's security section."""

from __future__ import annotations

import attrs

from tapio_testing import natsprovision

DAY = 24 * 3600
GB = 1024**3  # nats-server's reading of "10GB" (binary units)
MB = 1024**2


@attrs.frozen
class StreamSpec:
    subjects: tuple[str, ...]
    max_age_s: int
    max_msgs: int | None = None
    max_bytes: int | None = None
    max_msg_size: int | None = None


# CONTRACT.md §3 (production limits). Every stream: file storage, replicas 3 on the 3-node cluster,
# duplicate window 2m, discard old.
STREAMS: dict[str, StreamSpec] = {
    "TAPIO_EVENTS": StreamSpec(("tapio.events.>",), 7 * DAY, 10_000_000, 10 * GB, 1 * MB),
    "TAPIO_CORRELATIONS": StreamSpec(("tapio.correlations.>",), 30 * DAY),
    "TAPIO_ALERTS": StreamSpec(("tapio.alerts.>",), 30 * DAY),
    "TAPIO_PROCESSED": StreamSpec(("tapio.processed.>",), 3 * DAY),
    "TAPIO_DLQ": StreamSpec(("tapio.dlq.>",), 30 * DAY),
}
REPLICAS = 3
DUPLICATE_WINDOW_S = 120

# The standard durable pull consumers: durable -> (stream, NATS user of the workload).
CONSUMERS: dict[str, tuple[str, str]] = {
    "correlator": ("TAPIO_EVENTS", "tapio-correlation"),
    "pipeline": ("TAPIO_EVENTS", "tapio-pipeline"),
    "siem-exporter": ("TAPIO_CORRELATIONS", "tapio-siem-exporter"),
}
MAX_DELIVER = 5

# JetStream KV buckets, by the NATS user of the workload that keeps its state there: the correlator's
# engine snapshots (tapio_correlator.service.state_store; settings.state_bucket).
STATE_BUCKETS: dict[str, str] = {"tapio-correlation": "TAPIO_CORRELATOR_STATE"}
# A KV bucket's stream: KV_<bucket> on subjects $KV.<bucket>.> (the convention of every NATS client).
KV_STREAMS = {user: f"KV_{bucket}" for user, bucket in STATE_BUCKETS.items()}
# Streams a workload reads back with direct gets (no consumer): the correlator's restart catch-up
# (tapio_correlator.service.catchup) of the events after its snapshot and the correlations published.
DIRECT_READS: dict[str, tuple[str, ...]] = {
    "tapio-correlation": ("TAPIO_EVENTS", "TAPIO_CORRELATIONS"),
    "tapio-siem-exporter": ("TAPIO_ALERTS",),  # a sink that fell behind catches up by direct gets
}
# Users that may create no consumer at all, not even their own durable (NACK makes it): a grant to
# create one cannot constrain its configuration, so it could be a push consumer delivering anywhere.
NO_CONSUMER_CREATE = frozenset({"tapio-correlation"})
NO_CONSUMER_CREATE_WORKLOADS = frozenset({"tapio-correlator"})  # their Deployments

# The seed's users and permissions (NATS_MESSAGING_ARCHITECTURE.md, Security), and the data flow
# of the users the seed does not name (ARCHITECTURE.md): user -> (publish, subscribe).
SEED_PERMISSIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "tapio-collectors": (("tapio.events.>",), ()),
    "tapio-correlation": (("tapio.correlations.>",), ("tapio.events.>",)),
    "tapio-consumers": ((), ("tapio.correlations.>", "tapio.alerts.>")),
    "tapio-pipeline": (("tapio.processed.>",), ("tapio.events.>",)),
    "tapio-siem-exporter": (("tapio.alerts.>",), ("tapio.correlations.>",)),
}
# Dead letters: consumer user -> its DLQ subject (CONTRACT.md §3: tapio.dlq.{component}).
DLQ = {user: f"tapio.dlq.{durable}" for durable, (_, user) in CONSUMERS.items()}

go_duration_s = natsprovision.go_duration_s  # how NACK reads a Go duration ("168h", "2m")


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: `*` one token, `>` one or more trailing tokens."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


def allowed(allow: list[str], deny: list[str], subject: str) -> bool:
    """Whether a NATS permission (allow list, deny list) lets `subject` through."""
    return any(subject_matches(a, subject) for a in allow) and not any(
        subject_matches(d, subject) for d in deny
    )
