"""NATS subjects of the wire contract (CONTRACT.md §2) and the token sanitising rules: pure functions.

Every function takes the installation's subject prefix (`prefix=`, `tapio_common.subjects`, from
NATS_SUBJECT_PREFIX; default `tapio`) as its first token: components pass `cfg.subjects.prefix`."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from tapio.events.v1 import events_pb2
from tapio_common import subjects as names
from tapio_common.model import Confidence, Event, Severity, Source
from tapio_publisher.errors import EncodeError

DEFAULT_PREFIX = names.DEFAULT_PREFIX

CLUSTER_SCOPED = "_cluster"
"""Namespace token of cluster-scoped Kubernetes objects (nodes, ...)."""

MAX_TOKEN_BYTES = 64
_HASH_HEX = 8
_UNSAFE = re.compile(r"[^a-z0-9_-]")

SEVERITY_TOKENS = ("debug", "info", "warning", "error", "critical")
CONFIDENCE_TOKENS = ("high", "medium", "low")

# events_pb2 enum numbers -> subject tokens (unspecified severity counts as info, as in the model).
_PB_SEVERITY: dict[int, str] = {
    events_pb2.SEVERITY_UNSPECIFIED: "info",
    events_pb2.SEVERITY_DEBUG: "debug",
    events_pb2.SEVERITY_INFO: "info",
    events_pb2.SEVERITY_WARNING: "warning",
    events_pb2.SEVERITY_ERROR: "error",
    events_pb2.SEVERITY_CRITICAL: "critical",
}


@lru_cache(maxsize=65536)
def sanitize_token(value: str) -> str:
    """One subject token: lower-case `[a-z0-9_-]`, everything else `_`, never empty, at most 64 bytes.

    A longer token keeps its first 55 characters and gets `_` plus 8 hex digits of a hash of the
    whole original value, so distinct long values stay distinct and the result is stable.
    """
    token = _UNSAFE.sub("_", value.lower())
    if not token:
        return "_"
    if len(token) > MAX_TOKEN_BYTES:
        digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=_HASH_HEX // 2)
        token = f"{token[: MAX_TOKEN_BYTES - _HASH_HEX - 1]}_{digest.hexdigest()}"
    return token


def _join(*tokens: str) -> str:
    return ".".join(tokens)


@lru_cache(maxsize=65536)
def k8s_subject(namespace: str, resource: str, action: str, prefix: str = DEFAULT_PREFIX) -> str:
    """`tapio.events.k8s.{namespace}.{resource}.{action}`; no namespace means cluster-scoped."""
    ns = sanitize_token(namespace) if namespace else CLUSTER_SCOPED
    return _join(prefix, names.EVENTS, "k8s", ns, sanitize_token(resource), sanitize_token(action))


@lru_cache(maxsize=65536)
def systemd_subject(service: str, state: str, prefix: str = DEFAULT_PREFIX) -> str:
    """`tapio.events.systemd.{service}.{state}`."""
    return _join(prefix, names.EVENTS, "systemd", sanitize_token(service), sanitize_token(state))


@lru_cache(maxsize=65536)
def ebpf_subject(event_type: str, severity: str, prefix: str = DEFAULT_PREFIX) -> str:
    """`tapio.events.ebpf.{type}.{severity}` (severity: debug|info|warning|error|critical)."""
    return _join(prefix, names.EVENTS, "ebpf", sanitize_token(event_type), severity_token(severity))


@lru_cache(maxsize=65536)
def cni_subject(interface: str, direction: str, prefix: str = DEFAULT_PREFIX) -> str:
    """`tapio.events.cni.{interface}.{direction}`."""
    return _join(prefix, names.EVENTS, "cni", sanitize_token(interface), sanitize_token(direction))


def event_subject(event: Event | events_pb2.Event, prefix: str = DEFAULT_PREFIX) -> str:
    """The subject of an event (attrs model or protobuf message), by its source.

    Raises EncodeError naming `source` when the event has none.
    """
    if isinstance(event, events_pb2.Event):
        return _pb_event_subject(event, prefix)
    ctx = event.context
    if event.source is Source.K8S:
        return k8s_subject(ctx.namespace, event.type, event.action, prefix)
    if event.source is Source.SYSTEMD:
        unit = ctx.service or (event.systemd.unit if event.systemd is not None else "")
        return systemd_subject(unit, event.action, prefix)
    if event.source is Source.EBPF:
        return ebpf_subject(event.type, event.severity.token, prefix)
    if event.source is Source.CNI:
        net = event.network
        return cni_subject(net.interface if net else "", net.direction if net else "", prefix)
    raise EncodeError("source", f"event {event.id or '(no id)'} has no source, so it has no subject")


def _pb_event_subject(event: events_pb2.Event, prefix: str) -> str:
    source = event.source
    if source == events_pb2.SOURCE_K8S:
        return k8s_subject(event.context.namespace, event.type, event.action, prefix)
    if source == events_pb2.SOURCE_EBPF:
        return ebpf_subject(event.type, _PB_SEVERITY.get(event.severity, "info"), prefix)
    if source == events_pb2.SOURCE_SYSTEMD:
        return systemd_subject(event.context.service or event.systemd.unit, event.action, prefix)
    if source == events_pb2.SOURCE_CNI:
        return cni_subject(event.network.interface, event.network.direction, prefix)
    raise EncodeError("source", f"event {event.id or '(no id)'} has no source, so it has no subject")


def severity_token(severity: Severity | str | int) -> str:
    """debug|info|warning|error|critical from a model Severity, a name (`critical`,
    `SEVERITY_CRITICAL`) or a protobuf enum number; unspecified counts as info."""
    if isinstance(severity, Severity):
        return severity.token
    if isinstance(severity, int):
        token = _PB_SEVERITY.get(int(severity))
        if token is None:
            raise EncodeError("severity", f"unknown severity number {severity}")
        return token
    name = severity.strip().lower().removeprefix("severity_")
    if name == "unspecified":
        return "info"
    if name not in SEVERITY_TOKENS:
        raise EncodeError("severity", f"unknown severity {severity!r} (expected {'|'.join(SEVERITY_TOKENS)})")
    return name


def confidence_token(confidence: Confidence | str | float) -> str:
    """high|medium|low from a model Confidence, a name (`high`, `CONFIDENCE_HIGH`) or a score 0..1
    (high >= 0.8, medium >= 0.5, low below)."""
    if isinstance(confidence, Confidence):
        return confidence.token
    if not isinstance(confidence, str):
        return Confidence.from_score(float(confidence)).token
    name = confidence.strip().lower().removeprefix("confidence_")
    if name == "unspecified":
        return "low"
    if name not in CONFIDENCE_TOKENS:
        raise EncodeError(
            "confidence", f"unknown confidence {confidence!r} (expected {'|'.join(CONFIDENCE_TOKENS)})"
        )
    return name


def correlation_subject(
    confidence: Confidence | str | float, correlation_type: str, prefix: str = DEFAULT_PREFIX
) -> str:
    """`tapio.correlations.{confidence}.{type}`."""
    return _join(prefix, names.CORRELATIONS, confidence_token(confidence), sanitize_token(correlation_type))


def alert_subject(severity: Severity | str | int, component: str, prefix: str = DEFAULT_PREFIX) -> str:
    """`tapio.alerts.{severity}.{component}`."""
    return _join(prefix, names.ALERTS, severity_token(severity), sanitize_token(component))


def processed_subject(event_type: str, destination: str, prefix: str = DEFAULT_PREFIX) -> str:
    """`tapio.processed.{type}.{destination}`."""
    return _join(prefix, names.PROCESSED, sanitize_token(event_type), sanitize_token(destination))


def dlq_subject(component: str, prefix: str = DEFAULT_PREFIX) -> str:
    """`tapio.dlq.{component}`: where a consumer parks what it could not handle."""
    return _join(prefix, names.DLQ, sanitize_token(component))
