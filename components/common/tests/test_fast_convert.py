"""fast.event_from_pb equals the generic (cattrs) convert.event_from_proto, field for field."""

from __future__ import annotations

import pytest
from google.protobuf import json_format

from tapio.events.v1 import events_pb2
from tapio_common.errors import ContractError
from tapio_common.model import Context, Workload, convert
from tapio_common.model.fast import event_from_pb, event_time_ns
from tapio_common.scenarios import event_lines


def _lines() -> list[str]:
    lines = event_lines()
    assert len(lines) > 400, "the public scenarios are part of the repository"
    return lines


LINES = _lines()


def test_every_public_scenario_event_converts_like_the_generic_path() -> None:
    for line in LINES:
        msg = json_format.Parse(line, events_pb2.Event())
        fast = event_from_pb(msg)
        assert fast == convert.event_from_proto(msg), line
        assert event_time_ns(msg) == fast.time


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"id": "a", "context": {}},
        {"id": "b", "context": {"workload": {}}},
        {"id": "c", "k8s": {}},
        {"id": "d", "k8s": {"involvedObject": {"kind": "Pod", "name": "p"}, "conditions": {"Ready": "True"}}},
        {"id": "e", "systemd": {"unit": "kubelet.service", "restarts": 4}},
        {
            "id": "f",
            "kernel": {"count": "18446744073709551615", "oomPages": "123", "latencyNs": "2500000000"},
        },
        {"id": "g", "network": {"lossRatio": 0.035, "drops": "3500", "windowSeconds": 10}},
        {"id": "h", "time": "1969-12-31T23:59:59.5Z", "attributes": {"image": "x:v2"}},
        {
            "id": "i",
            "context": {"owners": [{"kind": "ReplicaSet"}, {}], "labels": {"a": ""}, "cgroupId": "42"},
        },
    ],
)
def test_edge_cases_convert_like_the_generic_path(doc: dict[str, object]) -> None:
    msg = json_format.ParseDict(doc, events_pb2.Event())
    assert event_from_pb(msg) == convert.event_from_proto(msg)


def test_unset_and_empty_sub_messages_are_told_apart() -> None:
    unset = event_from_pb(json_format.ParseDict({"context": {"pod": "p"}}, events_pb2.Event()))
    empty = event_from_pb(json_format.ParseDict({"context": {"workload": {}}}, events_pb2.Event()))
    assert unset.context.workload is None
    assert empty.context.workload == Workload()
    assert event_from_pb(events_pb2.Event()).context == Context()


def test_an_unknown_enum_value_is_a_contract_error_on_both_paths() -> None:
    msg = events_pb2.Event(id="x")
    msg.ParseFromString(msg.SerializeToString() + b"\x18\x63")  # field 3 (source) = 99
    with pytest.raises(ContractError):
        event_from_pb(msg)
    with pytest.raises(ContractError):
        convert.event_from_proto(msg)


def test_correlations_convert_like_the_generic_path() -> None:
    from tapio_common.model import Confidence, Correlation, Evidence, OwnerRef
    from tapio_common.model.fast import correlation_to_pb

    full = Correlation(
        id="c-1",
        type="cascading_failure",
        confidence=Confidence.HIGH,
        score=0.91,
        root_cause_event_id="e1",
        event_ids=("e1", "e2", "e3"),
        scope=Context(
            namespace="team-a",
            node="node-1",
            service="payments",
            workload=Workload("Deployment", "payments"),
            owners=(OwnerRef("ReplicaSet", "payments-1", "u1"),),
            labels={"app": "payments"},
        ),
        summary="OOM kill, then pods failed, then the Service lost its endpoints",
        evidence=(Evidence("e2", "caused", 0.5), Evidence("e3", "selected_by_service", 0.3)),
        first_seen=1_795_176_576_123_456_789,
        last_seen=1_795_176_600_000_000_001,
        revision=3,
    )
    for corr in (
        full,
        Correlation(id="bare"),
        Correlation(id="low", confidence=Confidence.LOW, scope=Context(pod="p")),
    ):
        assert correlation_to_pb(corr) == convert.correlation_to_proto(corr)
        assert correlation_to_pb(corr).SerializeToString(deterministic=True) == convert.correlation_to_proto(
            corr
        ).SerializeToString(deterministic=True)


def test_alert_and_correlation_fast_paths_equal_the_generic_ones() -> None:
    from tapio_common.model import Alert, AlertState, Confidence, Context, Correlation, Evidence, Severity
    from tapio_common.model.convert import alert_from_proto, alert_to_proto, correlation_to_proto
    from tapio_common.model.fast import alert_from_pb, alert_to_pb, correlation_from_pb

    corr = Correlation(
        "c1", "crash_loop", Confidence.MEDIUM, 0.6, "e1", ("e1", "e2"), Context(namespace="ns", pod="p"),
        "pod p restarts", (Evidence("e2", "followed", 0.5),), 1_000_000_123, 2_000_000_456, 3,
    )  # fmt: skip
    assert correlation_from_pb(correlation_to_proto(corr)) == corr
    for alert in (
        Alert("a", 5_000_000_001, Severity.ERROR, "web", "t", "d", "c1", ("e1",), {"k": "v"}, "",
              AlertState.UPDATED, 3, 1_000_000_123, 0),
        Alert("a", 9_000_000_000, Severity.INFO, "web", state=AlertState.RESOLVED, revision=4, starts_at=1,
              ends_at=9_000_000_000),
    ):  # fmt: skip
        pb = alert_to_pb(alert)
        assert pb == alert_to_proto(alert)
        assert alert_from_pb(pb) == alert == alert_from_proto(pb)


def test_a_correlation_scope_cache_gives_the_same_models_and_shares_equal_scopes() -> None:
    from tapio_common.model import Confidence, Context, Correlation, Workload
    from tapio_common.model.convert import correlation_to_proto
    from tapio_common.model.fast import MAX_SCOPES, correlation_from_pb

    def corr(n: int, workload: str) -> Correlation:
        scope = Context(
            namespace="shop", workload=Workload("Deployment", workload), labels={"b": "2", "a": "1"}
        )
        return Correlation(
            f"c{n}", "crash_loop", Confidence.HIGH, 0.9, "e1", ("e1",), scope, "s", (), 1, 2, n
        )

    scopes: dict[bytes, Context] = {}
    made = [
        correlation_from_pb(correlation_to_proto(c), scopes)
        for c in (corr(1, "web"), corr(2, "web"), corr(3, "db"))
    ]
    assert made == [corr(1, "web"), corr(2, "web"), corr(3, "db")]
    assert made[0].scope is made[1].scope, "one model for the same scope"
    assert made[2].scope is not made[0].scope
    assert len(scopes) == 2
    for n in range(MAX_SCOPES + 5):  # bounded: starts again when full
        correlation_from_pb(correlation_to_proto(corr(n, f"w{n}")), scopes)
    assert len(scopes) <= MAX_SCOPES
    assert (
        correlation_from_pb(correlation_to_proto(Correlation("c9", "t", Confidence.LOW)), scopes).scope
        == Context()
    )
