"""Small formatting helpers for summaries a human on call reads (durations, lists, object names)."""

from __future__ import annotations

from collections.abc import Iterable

from tapio_common.model import Context, Event, Workload

_SECOND = 1_000_000_000


def duration(ns: int) -> str:
    """`45s`, `3m10s`, `1h02m`."""
    s = max(0, round(ns / _SECOND))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def listing(items: Iterable[str], limit: int = 3) -> str:
    """`a, b, c` or `a, b, c and 4 more` (sorted, duplicates dropped)."""
    uniq = sorted(set(items))
    if len(uniq) <= limit:
        return ", ".join(uniq)
    return f"{', '.join(uniq[:limit])} and {len(uniq) - limit} more"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def pod_ref(ev: Event) -> str:
    c = ev.context
    return f"{c.namespace}/{c.pod}" if c.pod else (c.namespace or "?")


def workload_name(key: str) -> str:
    """`Deployment team-a/payments` from the topology key `team-a/Deployment/payments`."""
    ns, _, rest = key.partition("/")
    kind, _, name = rest.partition("/")
    return f"{kind} {ns}/{name}" if name else key


def workload_of_key(key: str) -> Workload | None:
    _, _, rest = key.partition("/")
    kind, _, name = rest.partition("/")
    return Workload(kind, name) if name else None


def unit_name(ev: Event) -> str:
    """The systemd unit of an event without its `.service` suffix."""
    unit = ev.context.service or (ev.systemd.unit if ev.systemd is not None else "")
    return unit.removesuffix(".service")


def scope(root: Event, namespace: str = "", node: str = "", service: str = "", workload: str = "") -> Context:
    """The Context of what an incident affects."""
    c = root.context
    return Context(
        cluster=c.cluster,
        namespace=namespace or (c.namespace if c.namespace != "_cluster" else ""),
        node=node or c.node,
        service=service,
        workload=workload_of_key(workload) if workload else None,
    )


def where(ev: Event) -> str:
    """Where an event happened, for a human: pod, Service, unit or node."""
    c = ev.context
    if c.pod:
        return f"pod {c.namespace}/{c.pod}" + (f" on {c.node}" if c.node else "")
    if c.service and ev.type in ("services", "endpoints"):
        return f"Service {c.namespace}/{c.service}"
    if c.service:
        return f"unit {c.service} on {c.node}" if c.node else f"unit {c.service}"
    if c.node:
        return f"node {c.node}"
    return c.namespace or c.cluster or "cluster"


def potential_summary(root: Event, events: int, span: int) -> str:
    """The summary of a potential_issue: what happened, where, and that it stands alone."""
    extra = f" (with {plural(events - 1, 'related event')} over {duration(span)})" if events > 1 else ""
    message = root.message or f"{root.type} {root.action}"
    return f"Possible issue: {message} ({where(root)}){extra}; it joined no known failure pattern."
