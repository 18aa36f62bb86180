"""The correlator's durable consumer takes every subject its rules can read (its filter subjects,
`tapio_jetstream.layout.CORRELATOR_SUBJECTS`): a rule's event kind left out would be lost silently."""

from __future__ import annotations

import pytest

from tapio.events.v1 import events_pb2
from tapio_common.model import Correlation
from tapio_correlator.engine import Engine
from tapio_correlator.engine.engine import _RELEVANT
from tapio_correlator_testing.loadgen import Mix, to_pb
from tapio_jetstream.layout import CORRELATOR, CORRELATOR_EBPF_KINDS, production_layout
from tapio_publisher.subjects import (
    SEVERITY_TOKENS,
    cni_subject,
    ebpf_subject,
    event_subject,
    k8s_subject,
    systemd_subject,
)

CONSUMER_SPEC = production_layout().consumer(CORRELATOR)

# Kinds of the other sources: every Kubernetes, systemd and CNI subject reaches the correlator.
OTHER_SOURCES = {"pods", "nodes", "services", "endpoints", "deployments", "replicasets", "unit", "interface"}


def test_the_ebpf_kinds_of_the_filter_are_those_the_rules_read() -> None:
    """A kind added to the engine's rules fails this until the layout's filter lists it."""
    assert set(_RELEVANT) - OTHER_SOURCES == set(CORRELATOR_EBPF_KINDS)


@pytest.mark.parametrize("kind", sorted(set(_RELEVANT) - OTHER_SOURCES))
def test_every_ebpf_kind_a_rule_reads_reaches_the_correlator_at_every_severity(kind: str) -> None:
    for sev in SEVERITY_TOKENS:
        assert CONSUMER_SPEC.takes(ebpf_subject(kind, sev)), (kind, sev)


def test_every_kubernetes_systemd_and_cni_event_reaches_the_correlator() -> None:
    for subject in (
        k8s_subject("team-a", "events", "warning"),
        k8s_subject("", "nodes", "not_ready"),
        systemd_subject("kubelet", "activating"),
        cni_subject("veth1234", "ingress"),
    ):
        assert CONSUMER_SPEC.takes(subject), subject


def test_an_ebpf_kind_no_rule_reads_reaches_it_only_as_an_error() -> None:
    for sev in SEVERITY_TOKENS:
        taken = CONSUMER_SPEC.takes(ebpf_subject("process_exec", sev))
        assert taken == (sev in ("error", "critical")), sev


def test_what_the_filter_leaves_out_of_the_benchmark_mix_changes_nothing_in_the_engine() -> None:
    mix = Mix(500, seed=3)
    setup = [to_pb(ev) for ev in mix.setup()]
    events = [to_pb(ev) for ev in mix.chunk(60_000)]
    kept = [ev for ev in events if CONSUMER_SPEC.takes(event_subject(ev))]
    assert 0 < len(kept) < len(events), "the mix has events the filter leaves out"
    left_out = [ev for ev in events if not CONSUMER_SPEC.takes(event_subject(ev))]
    assert all(ev.severity < events_pb2.SEVERITY_ERROR for ev in left_out)

    def final(stream: list[events_pb2.Event]) -> list[Correlation]:
        engine = Engine()
        out: list[Correlation] = []
        for ev in setup + stream:
            out += engine.process_pb(ev)
        return out + engine.finish()

    assert final(kept) == final(events)
