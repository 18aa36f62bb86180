"""Alerts for exporter tests and benchmarks: one with every character the SIEM formats must escape."""

from __future__ import annotations

from tapio_common.model import Alert, AlertState, Severity

T0 = 1_764_580_000_250_000_000  # 2025-12-01T09:06:40.250Z


def tricky(state: AlertState = AlertState.FIRING, **kw: object) -> Alert:
    base: dict[str, object] = dict(
        id="a1b2c3",
        time=T0,
        severity=Severity.CRITICAL,
        component="check-out",
        title='Cascading failure: a|b\\c "q" ]x',
        description="line1 k=v\\\nline2 \u00fcml\u00e4ut \u2603",
        correlation_id="corr-1",
        event_ids=("e1", "e2"),
        labels={"type": "cascading_failure", "confidence": "high", "score": "0.93", "namespace": "shop",
                "node": "node-1", "service": "check out"},
        runbook_url="https://runbooks.example/cascading_failure",
        state=state,
        revision=2,
        starts_at=T0 - 60_000_000_000,
    )  # fmt: skip
    base.update(kw)
    return Alert(**base)  # type: ignore[arg-type]
