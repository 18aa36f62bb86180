"""Every public scenario event loads through the attrs models and converters losslessly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format

from tapio.events.v1 import events_pb2
from tapio_common.errors import ContractError
from tapio_common.model import (
    Confidence,
    Correlation,
    Event,
    Evidence,
    KernelEvent,
    NetworkEvent,
    Severity,
    Source,
    convert,
)
from tapio_common.scenarios import event_lines


def scenario_lines() -> list[str]:
    lines = event_lines()
    assert len(lines) > 400, "the public scenarios are part of the repository"
    return lines


def _canonical(doc: dict[str, Any]) -> object:
    """The JSON document as proto3 JSON defines its meaning (64-bit ints may be strings)."""
    return json.loads(json_format.MessageToJson(json_format.ParseDict(doc, events_pb2.Event())))


@pytest.mark.parametrize("line", scenario_lines())
def test_scenario_event_round_trips(line: str) -> None:
    original = json.loads(line)
    event = convert.event_from_json(line)
    assert event.id == original["id"]
    pb = convert.event_to_proto(event)
    assert pb == json_format.Parse(line, events_pb2.Event())
    again = convert.event_from_bytes(pb.SerializeToString())
    assert again == event
    assert json.loads(convert.event_to_json(event)) == _canonical(original)


def test_timestamps_keep_nanoseconds() -> None:
    event = Event(id="e1", time=1_795_176_576_123_456_789, source=Source.EBPF, severity=Severity.ERROR)
    text = convert.event_to_json(event)
    assert '"time":"2026-11-20T' in text.replace(" ", "")
    assert convert.event_from_json(text).time == 1_795_176_576_123_456_789


def test_64_bit_counters_survive() -> None:
    event = Event(id="k", kernel=KernelEvent(window_ns=10_000_000_000, count=2**40))
    assert convert.event_from_json(convert.event_to_json(event)).kernel == event.kernel


def test_a_second_payload_is_refused() -> None:
    with pytest.raises(ContractError, match="more than one payload"):
        Event(id="x", kernel=KernelEvent(pid=1), network=NetworkEvent(interface="eth0"))


def test_bad_json_names_the_problem() -> None:
    with pytest.raises(ContractError, match=r"tapio\.events\.v1\.Event"):
        convert.event_from_json('{"id": "x", "severity": "SEVERITY_LOUD"}')
    with pytest.raises(ContractError, match=r"bad timestamp|tapio\.events\.v1\.Event"):
        convert.event_from_json('{"id": "x", "time": "yesterday"}')


def test_correlation_round_trip() -> None:
    corr = Correlation(
        id="c1",
        type="crash_loop",
        confidence=Confidence.HIGH,
        score=0.9,
        root_cause_event_id="e1",
        event_ids=("e1", "e2"),
        summary="pod web-1 restarted 5 times",
        evidence=(Evidence(event_id="e2", relation="followed", weight=0.5),),
        first_seen=1_000_000_000,
        last_seen=2_000_000_000,
        revision=3,
    )
    doc = json.loads(convert.correlation_to_json(corr))
    assert doc["confidence"] == "CONFIDENCE_HIGH"
    assert doc["rootCauseEventId"] == "e1"
    assert convert.correlation_from_json(json.dumps(doc)) == corr


def test_confidence_tokens() -> None:
    assert Confidence.from_score(0.8) is Confidence.HIGH
    assert Confidence.from_score(0.79) is Confidence.MEDIUM
    assert Confidence.from_score(0.5) is Confidence.MEDIUM
    assert Confidence.from_score(0.49).token == "low"


def test_addresses_of_pods_and_services_round_trip() -> None:
    """Pod IPs, host IP, Service cluster IPs and ports, container ids: model -> proto -> model, and the fast path."""
    from tapio_common.model import Event, K8sEvent, ServicePort
    from tapio_common.model.convert import event_from_proto, event_to_proto
    from tapio_common.model.fast import event_from_pb

    k8s = K8sEvent(
        kind="Service",
        cluster_ips=("10.96.0.10",),
        ports=(ServicePort("dns", 53, "UDP", "dns"), ServicePort("http", 80, "TCP", "8080")),
        pod_ips=("10.244.1.7", "fd00::7"),
        host_ip="192.168.49.2",
        container_ids=("3f2a9c",),
    )
    event = Event(id="addr-1", type="services", action="updated", k8s=k8s)
    proto = event_to_proto(event)
    assert [p.port for p in proto.k8s.ports] == [53, 80]
    assert event_from_proto(proto) == event
    assert event_from_pb(proto).k8s == k8s
