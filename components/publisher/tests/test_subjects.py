"""Subjects follow CONTRACT.md §2 exactly, and no input can change their shape."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tapio.events.v1 import events_pb2
from tapio_common.model import Confidence, Context, Event, NetworkEvent, Severity, Source, SystemdEvent
from tapio_publisher.errors import EncodeError
from tapio_publisher.subjects import (
    alert_subject,
    cni_subject,
    correlation_subject,
    dlq_subject,
    ebpf_subject,
    event_subject,
    k8s_subject,
    processed_subject,
    sanitize_token,
    systemd_subject,
)

TOKEN = re.compile(r"^[a-z0-9_-]{1,64}$")
anything = st.text(max_size=200)


def assert_shape(subject: str, tokens: int) -> None:
    parts = subject.split(".")
    assert len(parts) == tokens, subject
    assert all(parts), f"empty token in {subject!r}"
    assert "*" not in subject
    assert ">" not in subject
    assert not any(c.isspace() for c in subject)
    for token in parts:
        assert TOKEN.match(token), f"bad token {token!r} in {subject!r}"
        assert len(token.encode()) <= 64


def test_contract_examples() -> None:
    assert k8s_subject("default", "pods", "created") == "tapio.events.k8s.default.pods.created"
    assert systemd_subject("nginx", "failed") == "tapio.events.systemd.nginx.failed"
    assert ebpf_subject("oom_kill", "critical") == "tapio.events.ebpf.oom_kill.critical"
    assert cni_subject("eth0", "ingress") == "tapio.events.cni.eth0.ingress"
    assert correlation_subject(0.91, "cascading_failure") == "tapio.correlations.high.cascading_failure"
    assert alert_subject(Severity.CRITICAL, "checkout") == "tapio.alerts.critical.checkout"
    assert processed_subject("k8s", "siem") == "tapio.processed.k8s.siem"
    assert dlq_subject("correlator") == "tapio.dlq.correlator"


def test_cluster_scoped_objects_use_the_cluster_namespace() -> None:
    assert k8s_subject("", "nodes", "not_ready") == "tapio.events.k8s._cluster.nodes.not_ready"


@pytest.mark.parametrize(
    ("raw", "token"),
    [
        ("a.b", "a_b"),
        (">", "_"),
        ("*", "_"),
        ("", "_"),
        ("Kube System", "kube_system"),
        ("payments-v2", "payments-v2"),
        ("naïve", "na_ve"),
        ("tab\there", "tab_here"),
    ],
)
def test_sanitize_examples(raw: str, token: str) -> None:
    assert sanitize_token(raw) == token


def test_long_tokens_are_cut_and_stay_distinct() -> None:
    a, b = "x" * 100 + "a", "x" * 100 + "b"
    ta, tb = sanitize_token(a), sanitize_token(b)
    assert len(ta) == len(tb) == 64
    assert ta != tb
    assert ta.startswith("x" * 55 + "_")


def test_confidence_and_severity_tokens() -> None:
    assert correlation_subject(0.8, "t").split(".")[2] == "high"
    assert correlation_subject(0.5, "t").split(".")[2] == "medium"
    assert correlation_subject(0.49, "t").split(".")[2] == "low"
    assert correlation_subject(Confidence.MEDIUM, "t").split(".")[2] == "medium"
    assert correlation_subject("CONFIDENCE_HIGH", "t").split(".")[2] == "high"
    assert alert_subject("SEVERITY_WARNING", "web").split(".")[2] == "warning"
    assert alert_subject(events_pb2.SEVERITY_ERROR, "web").split(".")[2] == "error"
    assert alert_subject(Severity.UNSPECIFIED, "web").split(".")[2] == "info"
    with pytest.raises(EncodeError, match="severity"):
        alert_subject("loud", "web")
    with pytest.raises(EncodeError, match="confidence"):
        correlation_subject("sure", "t")


def test_event_subject_of_models_and_protobuf_agree() -> None:
    model = Event(
        id="e1", source=Source.K8S, type="pods", action="crash_loop", context=Context(namespace="team.a")
    )
    pb = events_pb2.Event(id="e1", source=events_pb2.SOURCE_K8S, type="pods", action="crash_loop")
    pb.context.namespace = "team.a"
    assert event_subject(model) == event_subject(pb) == "tapio.events.k8s.team_a.pods.crash_loop"

    sd = Event(source=Source.SYSTEMD, action="failed", systemd=SystemdEvent(unit="nginx.service"))
    sd_pb = events_pb2.Event(source=events_pb2.SOURCE_SYSTEMD, action="failed")
    sd_pb.systemd.unit = "nginx.service"
    assert event_subject(sd) == event_subject(sd_pb) == "tapio.events.systemd.nginx_service.failed"

    eb = Event(source=Source.EBPF, type="oom_kill", severity=Severity.CRITICAL)
    eb_pb = events_pb2.Event(
        source=events_pb2.SOURCE_EBPF, type="oom_kill", severity=events_pb2.SEVERITY_CRITICAL
    )
    assert event_subject(eb) == event_subject(eb_pb) == "tapio.events.ebpf.oom_kill.critical"

    cni = Event(
        source=Source.CNI, type="interface", network=NetworkEvent(interface="veth1.2", direction="egress")
    )
    cni_pb = events_pb2.Event(source=events_pb2.SOURCE_CNI, type="interface")
    cni_pb.network.interface, cni_pb.network.direction = "veth1.2", "egress"
    assert event_subject(cni) == event_subject(cni_pb) == "tapio.events.cni.veth1_2.egress"


def test_event_without_source_names_the_field() -> None:
    with pytest.raises(EncodeError) as exc:
        event_subject(events_pb2.Event(id="x"))
    assert exc.value.field == "source"


@given(namespace=anything, resource=anything, action=anything)
def test_k8s_subject_shape(namespace: str, resource: str, action: str) -> None:
    subject = k8s_subject(namespace, resource, action)
    assert_shape(subject, 6)
    assert subject == k8s_subject(namespace, resource, action)


@given(service=anything, state=anything)
def test_systemd_subject_shape(service: str, state: str) -> None:
    assert_shape(systemd_subject(service, state), 5)


@given(interface=anything, direction=anything)
def test_cni_subject_shape(interface: str, direction: str) -> None:
    assert_shape(cni_subject(interface, direction), 5)


@given(kind=anything, severity=st.sampled_from(["debug", "info", "warning", "error", "critical"]))
def test_ebpf_subject_shape(kind: str, severity: str) -> None:
    assert_shape(ebpf_subject(kind, severity), 5)


@given(component=anything, score=st.floats(min_value=0, max_value=1), kind=anything)
def test_other_subject_shapes(component: str, score: float, kind: str) -> None:
    assert_shape(correlation_subject(score, kind), 4)
    assert_shape(alert_subject(Severity.ERROR, component), 4)
    assert_shape(processed_subject(kind, component), 4)
    assert_shape(dlq_subject(component), 3)


@given(value=anything)
def test_sanitize_is_stable_and_idempotent(value: str) -> None:
    token = sanitize_token(value)
    assert TOKEN.match(token)
    assert sanitize_token(value) == token
    assert sanitize_token(token) == token


@given(namespace=anything)
def test_pb_event_subject_shape(namespace: str) -> None:
    ev = events_pb2.Event(source=events_pb2.SOURCE_K8S, type="pods", action="created")
    try:
        ev.context.namespace = namespace
    except ValueError:
        return  # protobuf refuses strings that are not valid UTF-8 (lone surrogates)
    assert_shape(event_subject(ev), 6)


def test_every_subject_takes_the_installation_prefix() -> None:
    """NATS_SUBJECT_PREFIX: the first token is the prefix, the rest of the shape is unchanged."""
    assert k8s_subject("default", "pods", "created", "blue") == "blue.events.k8s.default.pods.created"
    assert systemd_subject("nginx", "failed", "blue") == "blue.events.systemd.nginx.failed"
    assert ebpf_subject("oom_kill", "critical", "blue") == "blue.events.ebpf.oom_kill.critical"
    assert cni_subject("eth0", "ingress", "blue") == "blue.events.cni.eth0.ingress"
    assert (
        correlation_subject(0.91, "cascading_failure", "blue") == "blue.correlations.high.cascading_failure"
    )
    assert alert_subject(Severity.CRITICAL, "checkout", "blue") == "blue.alerts.critical.checkout"
    assert processed_subject("k8s", "siem", "blue") == "blue.processed.k8s.siem"
    assert dlq_subject("correlator", "blue") == "blue.dlq.correlator"
    pb = events_pb2.Event(id="e1", source=events_pb2.SOURCE_SYSTEMD, action="failed")
    pb.context.service = "kubelet"
    assert event_subject(pb, "blue") == "blue.events.systemd.kubelet.failed"
    assert event_subject(pb) == "tapio.events.systemd.kubelet.failed"
    model = Event(id="e2", source=Source.CNI, network=NetworkEvent(interface="eth0", direction="egress"))
    assert event_subject(model, "blue") == "blue.events.cni.eth0.egress"
