"""Alerts from events of the pipeline's siem destination: severity floor, the alert's fields, and its
lifecycle (fires once, a redelivery changes nothing, resolves after the `event` window)."""

from __future__ import annotations

import pytest

from tapio_common.model import AlertState, Context, Event, Severity, Source, Workload
from tapio_exporters.domain.alerts import AlertTemplate, alert_id, msg_id, subject
from tapio_exporters.domain.event_alerts import (
    EVENT_TYPE,
    build_event_alert,
    severity_at_least,
    wanted,
)
from tapio_exporters.domain.lifecycle import Lifecycle, LifecycleSettings

S = 1_000_000_000
T0 = 1_764_580_000 * S


def ev(n: int = 1, severity: Severity = Severity.ERROR, t: int = T0, **context: object) -> Event:
    return Event(
        id=f"ev-{n}",
        time=t,
        source=Source.SYSTEMD,
        type="unit",
        action="failed",
        severity=severity,
        message="kubelet.service failed (exit-code 1)",
        context=Context(node="node-7", **context),  # type: ignore[arg-type]
    )


def test_severity_floor() -> None:
    floor = severity_at_least("warning")
    assert floor is Severity.WARNING
    assert [s.token for s in Severity if wanted(s, floor)] == ["warning", "error", "critical"]
    assert not wanted(Severity.UNSPECIFIED, floor)  # counts as info
    assert wanted(Severity.UNSPECIFIED, severity_at_least("info"))
    with pytest.raises(ValueError, match="unknown severity 'severe'"):
        severity_at_least("severe")


def test_the_alert_of_an_event() -> None:
    template = AlertTemplate("https://rb.example/{type}/{component}?s={severity}", {"team": "sre"})
    a = build_event_alert(
        ev(workload=Workload("DaemonSet", "kubelet-proxy"), namespace="kube-system"), template
    )
    assert a.id == alert_id("event:ev-1")
    assert (a.state, a.revision, a.severity) == (AlertState.FIRING, 1, Severity.ERROR)
    assert a.component == "kubelet-proxy"
    assert a.title == "Unit (failed): kubelet-proxy (kube-system)"
    assert a.description == "kubelet.service failed (exit-code 1)\nevent: ev-1 (systemd unit)"
    assert a.event_ids == ("ev-1",)
    assert a.correlation_id == ""
    assert (a.time, a.starts_at, a.ends_at) == (T0, T0, 0)
    assert a.labels["type"] == EVENT_TYPE
    assert a.labels["team"] == "sre"
    assert a.labels["source"] == "systemd"
    assert a.labels["event_action"] == "failed"
    assert a.runbook_url == "https://rb.example/event/kubelet-proxy?s=error"
    assert subject(a) == "tapio.alerts.error.kubelet-proxy"
    assert msg_id(a) == f"{a.id}:1:firing"
    assert build_event_alert(ev(), AlertTemplate()).component == "node-7"  # no workload: the node


def test_fires_once_and_resolves_after_the_event_window() -> None:
    life = Lifecycle(LifecycleSettings(windows_ns={EVENT_TYPE: 60 * S}, default_window_ns=600 * S))
    first = build_event_alert(ev(), AlertTemplate())
    assert life.on_alert(first) == [first]
    assert life.on_alert(first) == []  # redelivered: nothing again
    assert life.advance(T0 + 59 * S) == []
    (done,) = life.advance(T0 + 60 * S)
    assert (done.id, done.state, done.ends_at) == (first.id, AlertState.RESOLVED, T0 + 60 * S)
    assert life.on_alert(first) == []  # still remembered after resolving: no refire


def test_an_event_older_than_its_window_fires_and_resolves_at_once() -> None:
    life = Lifecycle(LifecycleSettings(windows_ns={EVENT_TYPE: 60 * S}))
    life.advance(T0 + 3600 * S)
    out = life.on_alert(build_event_alert(ev(t=T0), AlertTemplate()))
    assert [a.state for a in out] == [AlertState.FIRING, AlertState.RESOLVED]
