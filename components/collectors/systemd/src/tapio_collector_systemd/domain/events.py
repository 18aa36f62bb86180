"""Turns a Transition into the contract's Event (SOURCE_SYSTEMD, type `unit`, action = new
ActiveState, SystemdEvent payload) with a deterministic id. Fed by the tracker's transitions;
the subject (`tapio.events.systemd.{service}.{state}`) follows from context.service and action.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from tapio.events.v1 import events_pb2
from tapio_collector_systemd.domain.tracker import Seen, Transition
from tapio_collector_systemd.domain.units import EXIT_CODE_NAMES, service_token
from tapio_publisher.ids import stable_id

NODE_CRITICAL: frozenset[str] = frozenset({"kubelet", "containerd", "crio", "cri-o", "docker"})
"""Units whose failure takes the node's pods down (the correlator's node_failure rule)."""


def event_id(node: str, t: Transition) -> str:
    """Deterministic: node, unit, the state reached and when systemd says it was reached (plus the
    restart count and invocation), so the same observation always has the same id."""
    a = t.after
    return stable_id(
        a.changed_usec // 1000,
        node,
        a.unit,
        a.active_state,
        a.sub_state,
        str(a.changed_usec),
        str(a.restarts),
        a.invocation_id,
    )


def needs_journal(t: Transition) -> bool:
    """A failed unit carries its last journal lines (why it failed, without logging in)."""
    return t.after.active_state == "failed" and (t.before is None or t.before.active_state != "failed")


def severity(t: Transition, critical: Collection[str] = NODE_CRITICAL) -> int:
    a = t.after
    if a.active_state == "failed":
        return (
            events_pb2.SEVERITY_CRITICAL if service_token(a.unit) in critical else events_pb2.SEVERITY_ERROR
        )
    if a.sub_state == "auto-restart" or (a.result not in ("", "success") and a.active_state != "active"):
        return events_pb2.SEVERITY_WARNING
    return events_pb2.SEVERITY_INFO


def describe(t: Transition, node: str) -> str:
    """One sentence for whoever is on call."""
    a = t.after
    where = f" on {node}" if node else ""
    if t.seen is Seen.INITIAL:
        text = f"{a.unit}{where} is {a.active_state} ({a.sub_state})"
    else:
        text = (
            f"{a.unit}{where} went from {t.previous_state or 'unknown'} to {a.active_state} ({a.sub_state})"
        )
    if a.result and a.result != "success":
        text += f": result {a.result}"
        code = EXIT_CODE_NAMES.get(a.exit_code, str(a.exit_code))
        if code == "exited":
            text += f", exit status {a.exit_status}"
        elif code:
            text += f", {code} by signal {a.exit_status}"
    if a.restarts:
        text += f", {a.restarts} restart{'s' if a.restarts != 1 else ''}"
    return text


def build_event(
    t: Transition,
    node: str,
    *,
    now_usec: int,
    journal: Sequence[str] = (),
    cluster: str = "",
    critical: Collection[str] = NODE_CRITICAL,
) -> events_pb2.Event:
    """The Event of one transition. `now_usec` dates it when systemd gave no StateChangeTimestamp."""
    a, b = t.after, t.before
    usec = a.changed_usec or now_usec
    ts = Timestamp(seconds=usec // 1_000_000, nanos=(usec % 1_000_000) * 1000)
    attributes = {"seen": t.seen.value}
    if t.seen is Seen.INITIAL:
        attributes["initial"] = "true"
    if b is not None:
        attributes["previous_sub_state"] = b.sub_state
    if a.invocation_id:
        attributes["invocation_id"] = a.invocation_id
    code_name = EXIT_CODE_NAMES.get(a.exit_code, "")
    if code_name:
        attributes["exit_code_name"] = code_name
    if journal:
        attributes["journal"] = "\n".join(journal)
    return events_pb2.Event(
        id=event_id(node, t),
        time=ts,
        source=events_pb2.SOURCE_SYSTEMD,
        type="unit",
        action=a.active_state,
        severity=severity(t, critical),  # type: ignore[arg-type]
        message=describe(t, node),
        context=events_pb2.Context(cluster=cluster, node=node, service=service_token(a.unit)),
        systemd=events_pb2.SystemdEvent(
            unit=a.unit,
            active_state=a.active_state,
            sub_state=a.sub_state,
            result=a.result,
            exit_code=a.exit_code,
            exit_status=a.exit_status,
            previous_state=t.previous_state,
            restarts=a.restarts,
        ),
        attributes=attributes,
    )
