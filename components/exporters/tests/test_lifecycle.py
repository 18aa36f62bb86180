"""The alert lifecycle: fire, update, resolve on event time, redeliveries, restore after a restart."""

from __future__ import annotations

import pytest

from tapio_common.model import AlertState, Confidence, Context, Correlation, Severity, Workload
from tapio_exporters.domain.alerts import (
    AlertTemplate,
    alert_id,
    build_alert,
    check_runbook_template,
    msg_id,
    subject,
)
from tapio_exporters.domain.lifecycle import MINUTE, Lifecycle, LifecycleSettings, version_of
from tapio_exporters.domain.severity import alert_severity

S = 1_000_000_000
T0 = 1_764_580_000 * S


def corr(
    rev: int, last: int, *, cid: str = "c1", ctype: str = "cascading_failure", **kw: object
) -> Correlation:
    return Correlation(
        id=cid,
        type=ctype,
        confidence=kw.pop("confidence", Confidence.HIGH),  # type: ignore[arg-type]
        score=0.9,
        root_cause_event_id="e0",
        event_ids=tuple(f"e{i}" for i in range(rev + 1)),
        scope=kw.pop("scope", Context(namespace="shop", service="checkout")),  # type: ignore[arg-type]
        summary="checkout fails after the database pod was OOM killed",
        first_seen=T0,
        last_seen=last,
        revision=rev,
    )


def states(alerts: list) -> list[tuple[str, str, int]]:  # type: ignore[type-arg]
    return [(a.id, a.state.token, a.revision) for a in alerts]


def test_severity_table() -> None:
    assert alert_severity("cascading_failure", Confidence.HIGH) is Severity.CRITICAL
    assert alert_severity("cascading_failure", Confidence.MEDIUM) is Severity.ERROR
    assert alert_severity("cascading_failure", Confidence.LOW) is Severity.WARNING
    assert alert_severity("network_degradation", Confidence.LOW) is Severity.INFO
    assert alert_severity("potential_issue", Confidence.HIGH) is Severity.INFO
    assert alert_severity("something_new", Confidence.HIGH) is Severity.WARNING


def test_alert_fields_and_ids() -> None:
    a = build_alert(corr(1, T0), AlertState.FIRING, AlertTemplate("https://rb.example/{type}/{namespace}"))
    assert a.id == alert_id("c1")
    assert len(a.id) == 24
    assert a.component == "checkout"
    assert a.severity is Severity.CRITICAL
    assert a.title == "Cascading failure: checkout (shop)"
    assert a.description.startswith("checkout fails after the database pod was OOM killed\n")
    assert a.runbook_url == "https://rb.example/cascading_failure/shop"
    assert a.labels["type"] == "cascading_failure"
    assert a.labels["namespace"] == "shop"
    assert msg_id(a) == f"{a.id}:1:firing"
    assert subject(a) == "tapio.alerts.critical.checkout"


def test_component_is_sanitised_for_the_subject() -> None:
    c = corr(1, T0, scope=Context(workload=Workload("Deployment", "Web.Front>*")))
    a = build_alert(c, AlertState.FIRING, AlertTemplate())
    assert a.component == "web_front__"
    assert subject(a) == "tapio.alerts.critical.web_front__"
    assert (
        build_alert(corr(1, T0, scope=Context()), AlertState.FIRING, AlertTemplate()).component == "cluster"
    )


def test_runbook_template_is_checked() -> None:
    check_runbook_template("https://x/{type}/{alert_id}")
    with pytest.raises(ValueError, match=r"unknown field \{team\}"):
        check_runbook_template("https://x/{team}")


def test_fire_update_resolve() -> None:
    lc = Lifecycle()
    aid = alert_id("c1")
    assert states(lc.on_correlation(corr(1, T0))) == [(aid, "firing", 1)]
    assert states(lc.on_correlation(corr(2, T0 + 60 * S))) == [(aid, "updated", 2)]
    assert lc.advance(T0 + 60 * S + 5 * MINUTE - 1) == []
    done = lc.advance(T0 + 60 * S + 5 * MINUTE)
    assert states(done) == [(aid, "resolved", 2)]
    assert done[0].ends_at == T0 + 60 * S + 5 * MINUTE
    assert done[0].starts_at == T0
    assert lc.open_count == 0


def test_redelivered_or_stale_revision_changes_nothing() -> None:
    lc = Lifecycle()
    lc.on_correlation(corr(1, T0))
    lc.on_correlation(corr(3, T0 + S))
    assert lc.on_correlation(corr(3, T0 + S)) == []
    assert lc.on_correlation(corr(2, T0 + S)) == []


def test_another_incident_s_time_resolves_the_quiet_one() -> None:
    lc = Lifecycle()
    lc.on_correlation(corr(1, T0, ctype="network_degradation"))  # 2-minute window
    out = lc.on_correlation(corr(1, T0 + 3 * MINUTE, cid="c2"))
    assert states(out) == [(alert_id("c1"), "resolved", 1), (alert_id("c2"), "firing", 1)]


def test_a_new_revision_after_resolve_fires_again() -> None:
    lc = Lifecycle()
    lc.on_correlation(corr(1, T0))
    lc.advance(T0 + 6 * MINUTE)
    out = lc.on_correlation(corr(2, T0 + 7 * MINUTE))
    assert states(out) == [(alert_id("c1"), "firing", 2)]


def test_a_late_revision_past_its_own_window_fires_then_resolves() -> None:
    lc = Lifecycle()
    lc.advance(T0 + 20 * MINUTE)
    out = lc.on_correlation(corr(1, T0))
    assert [a.state for a in out] == [AlertState.FIRING, AlertState.RESOLVED]


def test_configured_windows() -> None:
    lc = Lifecycle(LifecycleSettings(windows_ns={"crash_loop": 30 * S}, default_window_ns=60 * S))
    lc.on_correlation(corr(1, T0, ctype="crash_loop"))
    lc.on_correlation(corr(1, T0, cid="c2", ctype="node_failure"))
    assert states(lc.advance(T0 + 30 * S)) == [(alert_id("c1"), "resolved", 1)]
    assert states(lc.advance(T0 + 60 * S)) == [(alert_id("c2"), "resolved", 1)]


def test_resolved_alerts_are_forgotten_after_retain() -> None:
    lc = Lifecycle(LifecycleSettings(retain_ns=10 * MINUTE))
    lc.on_correlation(corr(1, T0))
    lc.advance(T0 + 5 * MINUTE)
    assert len(lc) == 1
    lc.advance(T0 + 15 * MINUTE)
    assert len(lc) == 0


def test_restore_rebuilds_the_state_a_restart_lost() -> None:
    first = Lifecycle()
    published = first.on_correlation(corr(1, T0)) + first.on_correlation(corr(2, T0 + S))
    published += first.on_correlation(corr(1, T0, cid="c2")) + first.advance(T0 + 5 * MINUTE)
    # c2 resolved at T0+5m; c1 is due at T0+1s+5m
    again = Lifecycle()
    for a in published:
        again.restore(a)
    assert again.watermark == T0 + 5 * MINUTE
    assert again.on_correlation(corr(2, T0 + S)) == []  # redelivered after the restart
    assert states(again.advance(T0 + S + 5 * MINUTE)) == [(alert_id("c1"), "resolved", 2)]
    assert again.on_correlation(corr(1, T0, cid="c2")) == []


def test_restore_keeps_the_latest_state_whatever_the_order() -> None:
    lc = Lifecycle()
    a1 = build_alert(corr(1, T0), AlertState.FIRING, AlertTemplate())
    a2 = build_alert(corr(2, T0 + S), AlertState.UPDATED, AlertTemplate())
    lc.restore(a2)
    lc.restore(a1)
    got = lc.get(a1.id)
    assert got is not None
    assert got.revision == 2
    assert version_of(a2) > version_of(a1)
