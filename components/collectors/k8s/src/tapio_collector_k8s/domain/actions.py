"""Semantic actions: pure functions of an object's old and new digest (None = absent) giving the
CONTRACT.md actions, each a Change that becomes one event. Nothing changed that the collector cares
about gives no Change at all."""

from __future__ import annotations

from typing import NamedTuple

from tapio_collector_k8s.domain.digest import (
    Container,
    CoreEvent,
    Deployment,
    Digest,
    Node,
    Pod,
    ReplicaSet,
    Service,
    Slice,
)

PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure")


class Change(NamedTuple):
    action: str
    severity: str  # debug|info|warning|error|critical
    message: str
    reason: str = ""
    container: str = ""  # the container concerned, "" for the object as a whole
    attributes: tuple[tuple[str, str], ...] = ()


def _lifecycle(kind: str, label: str, old: Digest | None, new: Digest | None) -> Change | None:
    if new is None:
        return Change("deleted", "info", f"{kind} {label} deleted")
    if old is None:
        return Change("created", "info", f"{kind} {label} created")
    return None


def pod_changes(old: Pod | None, new: Pod | None) -> list[Change]:
    ref = new or old
    assert ref is not None
    label = f"{ref.namespace}/{ref.name}"
    life = _lifecycle("pod", label, old, new)
    if life is not None or old is None or new is None:
        return [life] if life is not None else []
    out: list[Change] = []
    before = {c.name: c for c in old.containers}
    for c in new.containers:
        was = before.get(c.name)
        if was is None or was == c:  # unchanged: most containers of most updates
            continue
        out += _container_changes(label, was, c)
    if new.reason == "Evicted" and new.phase == "Failed" and old.reason != "Evicted":
        out.append(Change("evicted", "error", f"pod {label} evicted", reason="Evicted"))
    if new.unschedulable and not old.unschedulable:
        out.append(
            Change("failed_scheduling", "warning", f"pod {label} cannot be scheduled", reason="Unschedulable")
        )
    if new.ready and not old.ready:
        out.append(Change("ready", "info", f"pod {label} ready"))
    elif old.ready and not new.ready and new.reason != "Evicted":
        restarted = any(c.restarts > before[c.name].restarts for c in new.containers if c.name in before)
        if new.containers and all(c.ready for c in new.containers) and not restarted:
            # Every container still reports ready: the kubelet did not write this (it marks the
            # container whose probe failed), the node lifecycle controller did, for a node that
            # stopped reporting. The pod is lost with its node, not unhealthy.
            out.append(
                Change("not_ready", "warning", f"pod {label} not ready: its node stopped reporting",
                       reason="NodeNotReady")
            )  # fmt: skip
        elif (
            new.phase == "Running"
            and new.containers
            and all(c.running for c in new.containers)
            and not restarted
        ):
            out.append(
                Change(
                    "unhealthy",
                    "warning",
                    f"pod {label} lost readiness while running",
                    reason="ReadinessLost",
                )
            )
        else:
            out.append(Change("not_ready", "warning", f"pod {label} not ready"))
    if not out and old[1:] != new[1:]:
        out.append(Change("updated", "info", f"pod {label} updated"))
    return out


def _container_changes(label: str, was: Container, c: Container) -> list[Change]:
    out = []
    new_termination = c.term_at != was.term_at and bool(c.term_reason)
    attrs = (("container", c.name), ("restart_count", str(c.restarts)), ("exit_code", str(c.term_exit)))
    if c.term_reason == "OOMKilled" and new_termination:
        out.append(Change("oom_killed", "error", f"container {c.name} of pod {label} OOMKilled",
                          reason="OOMKilled", container=c.name, attributes=attrs))  # fmt: skip
    if c.restarts > was.restarts:
        out.append(Change("restarted", "warning",
                          f"container {c.name} of pod {label} restarted (exit {c.term_exit}, restart {c.restarts})",
                          reason=c.term_reason, container=c.name, attributes=attrs))  # fmt: skip
    if c.waiting == "CrashLoopBackOff" and was.waiting != "CrashLoopBackOff":
        out.append(Change("crash_loop", "error",
                          f"back-off restarting failed container {c.name} of pod {label} (exit {c.term_exit}, restart {c.restarts})",
                          reason="CrashLoopBackOff", container=c.name, attributes=attrs))  # fmt: skip
    return out


def _ready(node: Node) -> str:
    return dict(node.conditions).get("Ready", "Unknown")


def node_changes(old: Node | None, new: Node | None) -> list[Change]:
    ref = new or old
    assert ref is not None
    life = _lifecycle("node", ref.name, old, new)
    if life is not None or old is None or new is None:
        return [life] if life is not None else []
    out = []
    was, now = _ready(old), _ready(new)
    if was == "True" and now != "True":
        out.append(
            Change("not_ready", "critical", f"node {new.name} not ready (Ready={now})", reason="NodeNotReady")
        )
    elif now == "True" and was != "True":
        out.append(Change("ready", "info", f"node {new.name} ready", reason="NodeReady"))
    before, after = dict(old.conditions), dict(new.conditions)
    for cond in PRESSURE:
        if after.get(cond) == "True" and before.get(cond) != "True":
            out.append(Change("updated", "warning", f"node {new.name} has {cond}", reason=cond))
        elif before.get(cond) == "True" and after.get(cond) != "True":
            out.append(Change("updated", "info", f"node {new.name} no longer has {cond}", reason=f"No{cond}"))
    if not out and old[1:] != new[1:]:
        out.append(Change("updated", "info", f"node {new.name} updated"))
    return out


def service_changes(old: Service | None, new: Service | None) -> list[Change]:
    ref = new or old
    assert ref is not None
    life = _lifecycle("service", f"{ref.namespace}/{ref.name}", old, new)
    if life is not None or old is None or new is None:
        return [life] if life is not None else []
    if old[1:] != new[1:]:
        return [Change("updated", "info", f"service {new.namespace}/{new.name} updated")]
    return []


def slice_changes(old: Slice | None, new: Slice | None) -> list[Change]:
    ref = new or old
    assert ref is not None
    life = _lifecycle("endpoint slice", f"{ref.namespace}/{ref.name}", old, new)
    if life is not None or old is None or new is None:
        return [life] if life is not None else []
    if old[1:] != new[1:]:
        return [
            Change(
                "updated", "info", f"endpoints of service {new.namespace}/{new.service}: {new.ready} ready"
            )
        ]
    return []


def service_health(namespace: str, service: str, ready_before: int, ready_after: int) -> Change | None:
    """A Service whose ready endpoints (over all its slices) reach 0 is `unhealthy`; back above 0, `ready`."""
    if ready_before > 0 and ready_after == 0:
        return Change(
            "unhealthy",
            "error",
            f"service {namespace}/{service} has no ready endpoints",
            reason="NoReadyEndpoints",
        )
    if ready_before == 0 and ready_after > 0:
        return Change(
            "ready",
            "info",
            f"service {namespace}/{service} has {ready_after} ready endpoints",
            reason="EndpointsReady",
        )
    return None


def deployment_changes(old: Deployment | None, new: Deployment | None) -> list[Change]:
    ref = new or old
    assert ref is not None
    label = f"{ref.namespace}/{ref.name}"
    life = _lifecycle("deployment", label, old, new)
    if life is not None or old is None or new is None:
        return [life] if life is not None else []
    out = []
    if new.template != old.template:
        before = dict(old.images)
        changed = [img for name, img in new.images if before.get(name) != img] or [
            img for _, img in new.images[:1]
        ]
        image = ",".join(changed)
        out.append(Change("updated", "info", f"deployment {label} template changed (image {image})",
                          reason="TemplateChanged", attributes=(("image", image),)))  # fmt: skip
    if new.progress == "ProgressDeadlineExceeded" and old.progress != "ProgressDeadlineExceeded":
        out.append(Change("updated", "warning", f"deployment {label} rollout stalled (progress deadline exceeded)",
                          reason="ProgressDeadlineExceeded"))  # fmt: skip
    if new.replicas != old.replicas:
        out.append(_scaled("deployment", label, old.replicas, new.replicas))
    if not out and old[1:] != new[1:]:
        out.append(
            Change(
                "updated", "info", f"deployment {label} updated ({new.available}/{new.replicas} available)"
            )
        )
    return out


def _scaled(kind: str, label: str, before: int, after: int) -> Change:
    return Change("scaled", "info", f"{kind} {label} scaled from {before} to {after} replicas",
                  reason="ScalingReplicaSet", attributes=(("previous_replicas", str(before)),))  # fmt: skip


def replicaset_changes(old: ReplicaSet | None, new: ReplicaSet | None) -> list[Change]:
    ref = new or old
    assert ref is not None
    label = f"{ref.namespace}/{ref.name}"
    life = _lifecycle("replicaset", label, old, new)
    if life is not None or old is None or new is None:
        return [life] if life is not None else []
    if new.replicas != old.replicas:
        return [_scaled("replicaset", label, old.replicas, new.replicas)]
    if old[1:] != new[1:]:
        return [
            Change(
                "updated", "info", f"replicaset {label} updated ({new.available}/{new.replicas} available)"
            )
        ]
    return []


# Core Event reasons -> the same actions the objects' own changes give.
EVENT_ACTIONS: dict[str, tuple[str, str]] = {
    "BackOff": ("crash_loop", "error"),
    "CrashLoopBackOff": ("crash_loop", "error"),
    "Unhealthy": ("unhealthy", "warning"),
    "ProbeWarning": ("unhealthy", "warning"),
    "FailedScheduling": ("failed_scheduling", "warning"),
    "OOMKilling": ("oom_killed", "error"),
    "SystemOOM": ("oom_killed", "error"),
    "Evicted": ("evicted", "error"),
    "Evicting": ("evicted", "error"),
    "Preempted": ("evicted", "warning"),
    "NodeNotReady": ("not_ready", "critical"),
    "NodeReady": ("ready", "info"),
    "Killing": ("killing", "info"),
    "FailedMount": ("failed_mount", "warning"),
    "FailedAttachVolume": ("failed_mount", "warning"),
    "Failed": ("failed", "error"),
    "ErrImagePull": ("image_pull_failed", "error"),
    "ImagePullBackOff": ("image_pull_failed", "error"),
    "FailedCreatePodSandBox": ("failed", "error"),
    "ScalingReplicaSet": ("scaled", "info"),
}


def core_event_change(old: CoreEvent | None, new: CoreEvent | None) -> Change | None:
    """A core Event (new or counted again) as a Change, or None: deletions (TTL expiry) and Normal
    events whose reason is not in EVENT_ACTIONS are not news."""
    if new is None or (old is not None and old.repeats == new.repeats and old.message == new.message):
        return None
    mapped = EVENT_ACTIONS.get(new.reason)
    if mapped is None and new.type != "Warning":
        return None
    action, severity = mapped or ("warning", "warning")
    kind, name, ns, _ = new.involved
    where = f"{kind.lower()} {ns + '/' if ns else ''}{name}"
    return Change(action, severity, f"{where}: {new.reason}: {new.message}"[:1000], reason=new.reason,
                  attributes=(("event_type", new.type), ("count", str(new.repeats))))  # fmt: skip


def changes(resource: str, old: Digest | None, new: Digest | None) -> list[Change]:
    """Dispatch by resource (pods, nodes, ...). Core Events give at most one Change."""
    if resource == "pods":
        return pod_changes(old, new)  # type: ignore[arg-type]
    if resource == "nodes":
        return node_changes(old, new)  # type: ignore[arg-type]
    if resource == "services":
        return service_changes(old, new)  # type: ignore[arg-type]
    if resource == "endpointslices":
        return slice_changes(old, new)  # type: ignore[arg-type]
    if resource == "deployments":
        return deployment_changes(old, new)  # type: ignore[arg-type]
    if resource == "replicasets":
        return replicaset_changes(old, new)  # type: ignore[arg-type]
    if resource == "events":
        one = core_event_change(old, new)  # type: ignore[arg-type]
        return [one] if one is not None else []
    raise ValueError(f"unknown resource {resource!r}")
