"""Semantic actions as pure functions of old and new digests, on realistic recorded objects and
the status transitions the kubelet and controllers make."""

from __future__ import annotations

import pytest

from tapio_collector_k8s.domain import digest as dg
from tapio_collector_k8s.domain.actions import (
    changes,
    core_event_change,
    service_health,
)
from tapio_testing.k8s_api import objects as o


def acts(resource: str, old: dict[str, object] | None, new: dict[str, object] | None) -> list[str]:
    d_old = dg.digest(resource, old) if old is not None else None
    d_new = dg.digest(resource, new) if new is not None else None
    return [c.action for c in changes(resource, d_old, d_new)]


POD = o.pod("checkout", 1)


def test_pod_lifecycle() -> None:
    assert acts("pods", None, POD) == ["created"]
    assert acts("pods", POD, None) == ["deleted"]
    assert acts("pods", POD, POD) == []  # nothing changed: nothing to say


def test_restart_crash_loop_and_oom() -> None:
    assert acts("pods", POD, o.terminated(POD)) == ["restarted"]
    assert acts("pods", POD, o.crash_loop(POD)) == ["restarted", "crash_loop", "not_ready"]
    oom = o.terminated(POD, reason="OOMKilled", exit_code=137)
    assert acts("pods", POD, oom) == ["oom_killed", "restarted"]
    looping = o.crash_loop(POD)
    assert acts("pods", looping, looping) == []  # still in back-off: not a new crash loop


def test_crash_loop_change_carries_container_and_exit_code() -> None:
    found = changes("pods", dg.pod(POD), dg.pod(o.crash_loop(POD, exit_code=2, container="envoy")))
    crash = next(c for c in found if c.action == "crash_loop")
    assert crash.container == "envoy"
    assert dict(crash.attributes)["exit_code"] == "2"


def test_readiness_lost_while_running_is_unhealthy_and_back_is_ready() -> None:
    lost = o.readiness(POD, False)
    assert acts("pods", POD, lost) == ["unhealthy"]
    assert acts("pods", lost, POD) == ["ready"]


def test_ready_lost_with_every_container_still_ready_is_the_node_controller_not_ready() -> None:
    # The node lifecycle controller flips only the Ready condition of the pods of a node that
    # stopped reporting; the kubelet, on a failed probe, marks the container too (above).
    found = changes("pods", dg.pod(POD), dg.pod(o.node_lost(POD)))
    assert [(c.action, c.reason) for c in found] == [("not_ready", "NodeNotReady")]


def test_evicted() -> None:
    assert acts("pods", POD, o.evicted(POD)) == ["evicted"]


def test_status_only_change_is_updated() -> None:
    moved = o.pod("checkout", 1)
    moved["status"]["podIPs"] = [{"ip": "10.244.9.9"}]
    assert acts("pods", POD, moved) == ["updated"]


def test_node_conditions() -> None:
    n = o.node()
    assert acts("nodes", n, o.node_condition(n, "Ready", "Unknown")) == ["not_ready"]
    assert acts("nodes", o.node_condition(n, "Ready", "False"), n) == ["ready"]
    pressure = dg.node(o.node_condition(n, "MemoryPressure", "True"))
    found = changes("nodes", dg.node(n), pressure)
    assert [(c.action, c.reason, c.severity) for c in found] == [("updated", "MemoryPressure", "warning")]
    assert dict(pressure.conditions)["MemoryPressure"] == "True"


def test_deployment_rollout_stall_and_scale() -> None:
    d = o.deployment("checkout")
    found = changes(
        "deployments",
        dg.deployment(d),
        dg.deployment(o.rollout(d, "registry.example.com/shop/checkout:v1.15.0")),
    )
    assert [(c.action, c.reason, dict(c.attributes)) for c in found] == [
        ("updated", "TemplateChanged", {"image": "registry.example.com/shop/checkout:v1.15.0"})
    ]
    stalled = changes("deployments", dg.deployment(d), dg.deployment(o.stalled(d)))
    assert [(c.action, c.reason) for c in stalled] == [("updated", "ProgressDeadlineExceeded")]
    scaled = o.deployment("checkout", replicas=5)
    assert acts("deployments", d, scaled) == ["scaled"]
    assert acts("replicasets", o.replicaset("checkout"), o.replicaset("checkout", replicas=0)) == ["scaled"]


def test_service_health_from_ready_endpoints() -> None:
    assert service_health("shop", "checkout", 2, 0).action == "unhealthy"  # type: ignore[union-attr]
    assert service_health("shop", "checkout", 0, 1).action == "ready"  # type: ignore[union-attr]
    assert service_health("shop", "checkout", 2, 1) is None


@pytest.mark.parametrize(
    ("reason", "type_", "action"),
    [("BackOff", "Warning", "crash_loop"), ("Unhealthy", "Warning", "unhealthy"),
     ("FailedScheduling", "Warning", "failed_scheduling"), ("OOMKilling", "Warning", "oom_killed"),
     ("Evicted", "Warning", "evicted"), ("FailedMount", "Warning", "failed_mount"),
     ("SomethingNew", "Warning", "warning")],
)  # fmt: skip
def test_core_events_map_onto_the_same_actions(reason: str, type_: str, action: str) -> None:
    ev = dg.core_event(o.core_event(reason, POD, "probe failed", type_=type_))
    change = core_event_change(None, ev)
    assert change is not None
    assert change.action == action
    assert change.reason == reason


def test_core_events_normal_and_unchanged_are_not_news() -> None:
    assert (
        core_event_change(None, dg.core_event(o.core_event("Pulled", POD, "pulled", type_="Normal"))) is None
    )
    ev = dg.core_event(o.core_event("BackOff", POD, "back-off", count=3))
    assert core_event_change(ev, ev) is None
    again = dg.core_event(o.core_event("BackOff", POD, "back-off", count=4))
    assert core_event_change(ev, again) is not None


@pytest.mark.parametrize(
    "bad",
    [[], {"kind": "Pod"}, {"kind": "Pod", "metadata": {"name": "x"}},
     {"kind": "Pod", "metadata": {"name": "x", "uid": "u"}, "status": {"containerStatuses": [{"restartCount": "many"}]}}],
)  # fmt: skip
def test_malformed_objects_are_refused(bad: object) -> None:
    with pytest.raises(dg.MalformedObject):
        dg.digest("pods", bad)


def test_unknown_kind_in_a_stream_is_refused() -> None:
    with pytest.raises(dg.MalformedObject, match="unexpected kind"):
        dg.digest("pods", o.node())
