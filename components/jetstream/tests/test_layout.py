"""The topology of CONTRACT.md §3 as data, and the plan that reconciles a server with it."""

from __future__ import annotations

import attrs
import pytest

from tapio_common.subjects import Subjects
from tapio_jetstream.layout import (
    CORRELATIONS,
    CORRELATOR,
    CORRELATOR_EBPF_KINDS,
    CORRELATOR_SUBJECTS,
    DAY,
    EVENTS,
    GB,
    ApplyReport,
    Change,
    plan,
    production_layout,
    subject_matches,
    subject_taker,
)
from tapio_jetstream.streams import consumer_config


def test_production_limits() -> None:
    topo = production_layout(replicas=3)
    assert [s.name for s in topo.streams] == [
        "TAPIO_EVENTS", "TAPIO_CORRELATIONS", "TAPIO_ALERTS", "TAPIO_PROCESSED", "TAPIO_DLQ",
    ]  # fmt: skip
    ev = topo.stream(EVENTS)
    assert ev.subjects == ("tapio.events.>",)
    assert (ev.max_age, ev.max_msgs, ev.max_bytes, ev.max_msg_size) == (7 * DAY, 10_000_000, 10 * GB, 1 << 20)
    assert (ev.storage, ev.replicas, ev.duplicate_window, ev.discard) == ("file", 3, 120.0, "old")
    ages = {s.name: s.max_age / DAY for s in topo.streams}
    assert ages == {
        "TAPIO_EVENTS": 7,
        "TAPIO_CORRELATIONS": 30,
        "TAPIO_ALERTS": 30,
        "TAPIO_PROCESSED": 3,
        "TAPIO_DLQ": 30,
    }
    assert all(s.replicas == 3 and s.storage == "file" for s in topo.streams)
    consumers = {(c.stream, c.durable): c for c in topo.consumers}
    assert set(consumers) == {(EVENTS, "correlator"), (EVENTS, "pipeline"), (CORRELATIONS, "siem-exporter")}
    assert all(c.max_deliver == 5 and c.ack_policy == "explicit" for c in topo.consumers)


def test_another_prefix_gets_its_own_streams_and_filters() -> None:
    """NATS_SUBJECT_PREFIX blue: streams BLUE_*, subjects and filters blue.*; durable names stay
    (they live inside a stream); limits are the production ones."""
    blue = production_layout(3, subjects=Subjects("blue"))
    tapio = production_layout(3)
    assert [s.name for s in blue.streams] == [
        "BLUE_EVENTS", "BLUE_CORRELATIONS", "BLUE_ALERTS", "BLUE_PROCESSED", "BLUE_DLQ",
    ]  # fmt: skip
    assert [s.subjects for s in blue.streams] == [
        ("blue.events.>",), ("blue.correlations.>",), ("blue.alerts.>",), ("blue.processed.>",), ("blue.dlq.>",),
    ]  # fmt: skip
    assert {(c.stream, c.durable, c.filter_subject) for c in blue.consumers} == {
        ("BLUE_EVENTS", "correlator", "blue.events.>"),
        ("BLUE_EVENTS", "pipeline", "blue.events.>"),
        ("BLUE_CORRELATIONS", "siem-exporter", "blue.correlations.>"),
    }
    assert blue.consumer("pipeline").stream == "BLUE_EVENTS"
    assert all(f.startswith("blue.events.") for f in blue.consumer("correlator").subjects)
    assert len(blue.consumer("correlator").subjects) == len(tapio.consumer("correlator").subjects)
    assert blue.subjects.prefix == "blue"
    for mine, theirs in zip(blue.streams, tapio.streams, strict=True):
        assert mine.comparable() | {"subjects": ()} == theirs.comparable() | {"subjects": ()}
    with pytest.raises(KeyError):
        blue.consumer("nope")


def test_scaled_down_for_tests() -> None:
    ev = production_layout(1, scale=0.001).stream(EVENTS)
    assert (ev.max_msgs, ev.max_bytes, ev.max_age) == (10_000, 10 * GB // 1000, 7 * DAY)
    with pytest.raises(ValueError, match="replicas"):
        production_layout(0)


def test_plan_create_unchanged_update_refused() -> None:
    spec = production_layout(1).stream(EVENTS)
    wanted = spec.comparable()
    assert plan("stream", EVENTS, wanted, None).action == "create"
    assert plan("stream", EVENTS, wanted, dict(wanted)).action == "unchanged"
    update = plan("stream", EVENTS, wanted, {**wanted, "max_bytes": 5 * GB})
    assert update == Change("stream", EVENTS, "update", (f"max_bytes: {5 * GB} -> {10 * GB}",))
    refused = plan("stream", EVENTS, wanted, {**wanted, "storage": "memory", "max_msgs": 1})
    assert refused.action == "refused"
    assert refused.changes == ("storage: memory -> file",)
    consumer = production_layout(1).consumers[0].comparable()
    assert plan("consumer", "c", consumer, {**consumer, "ack_policy": "none"}).action == "refused"
    assert plan("consumer", "c", consumer, {**consumer, "ack_wait": 5.0}).action == "update"


def test_report_summary() -> None:
    report = ApplyReport((Change("stream", "A", "create"), Change("stream", "B", "unchanged")), dry_run=True)
    assert report.summary() == "would create 1, unchanged 1"


def test_subject_matching_follows_nats_wildcards() -> None:
    assert subject_matches("tapio.events.>", "tapio.events.k8s.ns.pods.created")
    assert not subject_matches("tapio.events.>", "tapio.events")
    assert subject_matches("tapio.events.ebpf.*.error", "tapio.events.ebpf.process_exec.error")
    assert not subject_matches("tapio.events.ebpf.*.error", "tapio.events.ebpf.process_exec.info")
    assert not subject_matches("tapio.events.ebpf.oom_kill.info", "tapio.events.ebpf.oom_kill.info.x")


def test_the_correlator_takes_what_its_rules_read_and_its_filters_do_not_overlap() -> None:
    spec = next(c for c in production_layout().consumers if c.durable == CORRELATOR)
    assert spec.subjects == CORRELATOR_SUBJECTS
    assert spec.takes("tapio.events.k8s.default.events.warning")
    assert spec.takes("tapio.events.systemd.kubelet.failed")
    assert spec.takes("tapio.events.cni.eth0.egress")
    assert spec.takes("tapio.events.ebpf.oom_kill.critical")
    assert spec.takes("tapio.events.ebpf.tcp_retransmit.info")
    assert spec.takes("tapio.events.ebpf.process_exit.error"), "a lone error of a kind no rule reads"
    assert not spec.takes("tapio.events.ebpf.process_exec.debug"), "high-rate noise no rule reads"
    assert not spec.takes("tapio.events.ebpf.process_exit.info")
    # nats-server refuses overlapping filters of one consumer: no subject may match two of them.
    probes = [
        f"tapio.events.ebpf.{kind}.{sev}"
        for kind in (*CORRELATOR_EBPF_KINDS, "process_exec", "dns")
        for sev in ("debug", "info", "warning", "error", "critical")
    ] + ["tapio.events.k8s.ns.pods.created", "tapio.events.systemd.a.failed", "tapio.events.cni.e.in"]
    for subject in probes:
        assert sum(subject_matches(f, subject) for f in spec.subjects) <= 1, subject
    others = [c for c in production_layout().consumers if c.durable != CORRELATOR]
    assert all(c.subjects == (c.filter_subject,) for c in others), "the others take all of their stream"


def test_the_correlator_filters_in_the_client_and_its_durable_takes_the_whole_stream() -> None:
    """Several server-side filters make nats-server walk a block's subjects for each message of a
    lagging durable (components/jetstream/README.md): the correlator's are applied by the runtime."""
    spec = production_layout().consumer(CORRELATOR)
    assert spec.filter_at == "client"
    assert spec.server_subjects == ("tapio.events.>",)
    assert spec.comparable()["filter_subjects"] == ("tapio.events.>",)
    cfg = consumer_config(spec)
    assert (cfg.filter_subject, cfg.filter_subjects) == ("tapio.events.>", None)
    server = attrs.evolve(spec, filter_at="server")
    assert consumer_config(server).filter_subjects == list(CORRELATOR_SUBJECTS)
    with pytest.raises(ValueError, match="filter_at"):
        attrs.evolve(spec, filter_at="both")


def test_the_subject_taker_answers_as_the_spec_and_stays_bounded() -> None:
    spec = production_layout().consumer(CORRELATOR)
    takes = subject_taker(spec, most=3)
    subjects = [
        "tapio.events.ebpf.process_exec.info", "tapio.events.ebpf.process_exec.error",
        "tapio.events.k8s.ns.pods.created", "tapio.events.ebpf.tcp_reset.debug", "tapio.events.cni.e.in",
    ]  # fmt: skip
    for _ in range(2):  # the second round from what it remembers (or learnt again past `most`)
        assert (
            [takes(s) for s in subjects]
            == [spec.takes(s) for s in subjects]
            == [False, True, True, True, True]
        )
