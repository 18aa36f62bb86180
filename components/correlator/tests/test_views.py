"""The correlator's decode (views: context and k8s kept as wire bytes) gives exactly what the protobuf
path gives: the public scenarios, the generated corpus delivered cleanly, twice, late and skewed,
the benchmark's mix, and snapshots taken with views buffered. Plus the byte-compare no-op of the
topology and what is refused."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from tapio.events.v1 import events_pb2
from tapio_common.model import Context, Correlation, Event, K8sEvent, Severity, Source
from tapio_common.model.convert import event_from_json, event_to_proto
from tapio_common.scenarios import load_scenarios
from tapio_correlator.engine import Engine
from tapio_correlator.engine.views import EventView, decode_views, full_event
from tapio_correlator_testing.loadgen import Mix
from tapio_jetstream import DecodeError, decode_events
from tapio_publisher.codec import ENCODING_BATCH, ENCODING_HEADER
from tapio_scenariogen import generate, variants
from tapio_scenariogen.delivery import host_nodes, node_late, node_skewed, redelivered
from tapio_scenariogen.families import FAMILIES

SECOND = 1_000_000_000
BATCH = {ENCODING_HEADER: ENCODING_BATCH}
PUBLIC = [(sc.name, [event_from_json(line) for line in sc.lines]) for sc in load_scenarios()]
CASES = [(f, v, s) for f in sorted(FAMILIES) for v in variants(f) for s in range(2)]


def _batches(pbs: Sequence[events_pb2.Event], size: int) -> list[bytes]:
    return [
        events_pb2.EventBatch(events=pbs[i : i + size]).SerializeToString() for i in range(0, len(pbs), size)
    ]


def _both(events: Iterable[Event], size: int = 7) -> tuple[list[Correlation], list[Correlation], Engine]:
    """The same events as batch messages through decode_events/process_pb and decode_views/process_view."""
    by_pb, by_view, _, view = _engines(events, size)
    return by_pb, by_view, view


def _engines(
    events: Iterable[Event], size: int = 7
) -> tuple[list[Correlation], list[Correlation], Engine, Engine]:
    """_both() and the two engines (protobuf path, view path) after finish()."""
    payloads = _batches([event_to_proto(ev) for ev in events], size)
    pb, view = Engine(), Engine()
    by_pb: list[Correlation] = []
    by_view: list[Correlation] = []
    for payload in payloads:
        for msg in decode_events(BATCH, payload):
            by_pb += pb.process_pb(msg)
        for v in decode_views(BATCH, payload):
            by_view += view.process_view(v)
    return by_pb + pb.finish(), by_view + view.finish(), pb, view


def _topology(engine: Engine) -> dict[str, object]:
    """What the topology holds (pods with every field of their records, the indexes, tombstones)."""
    topo = engine.topo

    def record(p: Any) -> tuple[object, ...]:
        return tuple(getattr(p, name) for name in type(p).__slots__)

    return {
        "pods": {uid: record(p) for uid, p in topo.pods.items()},
        "graveyard": {uid: record(p) for uid, p in topo.graveyard.items()},
        "pod_names": dict(topo.pod_names),
        "containers": dict(topo.containers),
        "cgroups": dict(topo.cgroups),
        "pod_ips": dict(topo.pod_ips),
        "deployments": {
            k: (d.desired, d.available, dict(d.replicasets)) for k, d in topo.deployments.items()
        },
        "counters": engine.counters(),
    }


@pytest.mark.parametrize(("name", "events"), PUBLIC, ids=[n for n, _ in PUBLIC])
def test_public_scenarios_give_identical_correlations(name: str, events: list[Event]) -> None:
    by_pb, by_view, _ = _both(events)
    assert by_view == by_pb, name
    assert by_pb


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_generated_scenarios_delivered_cleanly_twice_late_or_skewed_give_identical_correlations(
    case: tuple[str, str, int],
) -> None:
    family, variant, seed = case
    events = list(generate(family, seed, variant).events)
    nodes = host_nodes(events)
    deliveries = [events, redelivered(events, random.Random(seed))]
    if nodes:
        deliveries += [node_late(events, nodes[0]), node_skewed(events, nodes[0], 1.0)]
    for delivered in deliveries:
        by_pb, by_view, _ = _both(delivered)
        assert by_view == by_pb, case


def test_the_benchmark_mix_gives_identical_correlations_and_most_pod_updates_parse_nothing() -> None:
    mix = Mix(500, 3)
    setup = mix.setup()
    stream = [ev for _ in range(6) for ev in mix.chunk(10_000)]
    by_pb, by_view, engine = _both([*setup, *stream], size=50)
    assert by_view == by_pb
    assert [c for c in by_pb if c.score >= 0.5], "the mix's incidents were found"
    assert len(engine.topo._applied) > 400, "most pods' last update is remembered as bytes"


def test_the_benchmark_mix_leaves_the_same_topology_and_counters_in_both_paths() -> None:
    """Pod churn (deleted pods applied by their known context bytes), first and repeated updates,
    retransmits skipped while no network_degradation is open: the same records and indexes."""
    mix = Mix(200, 5)
    setup = mix.setup()
    stream = [ev for _ in range(2) for ev in mix.chunk(10_000)]
    by_pb, by_view, pb, view = _engines([*setup, *stream], size=40)
    assert by_view == by_pb
    assert view.counters()["lifecycle"] > 5_000
    assert sum(ev.action == "deleted" for ev in stream) > 250, "pods were deleted (and others created)"
    assert _topology(view) == _topology(pb)


def test_a_snapshot_with_views_buffered_restores_to_the_same_correlations() -> None:
    scenario = PUBLIC[0][1]
    retransmits = [
        Event(
            f"r{i}", ev.time + 1, Source.EBPF, "tcp_retransmit", "retransmit", Severity.INFO, "", ev.context
        )
        for i, ev in enumerate(scenario)
    ]
    events = sorted([*scenario, *retransmits], key=lambda ev: ev.time)
    payloads = _batches([event_to_proto(ev) for ev in events], 5)
    cut = len(payloads) // 2
    engine = Engine()
    before: list[Correlation] = []
    for payload in payloads[:cut]:
        for v in decode_views(BATCH, payload):
            before += engine.process_view(v)
    assert any(type(entry[5]) is EventView for entry in engine.buffer), "a view is buffered"
    restored = Engine.restore(engine.snapshot())
    assert all(type(entry[5]) is events_pb2.Event for entry in restored.buffer)
    rest_a: list[Correlation] = []
    rest_b: list[Correlation] = []
    for payload in payloads[cut:]:
        for v in decode_views(BATCH, payload):
            rest_a += engine.process_view(v)
            rest_b += restored.process_view(v)
    assert rest_a + engine.finish() == rest_b + restored.finish()


def _pod(t: int, action: str, node: str = "n1", phase: str = "Running") -> Event:
    context = Context(namespace="a", pod="p", pod_uid="u1", node=node, labels={"app": "x"})
    k8s = K8sEvent(kind="Pod", name="p", uid="u1", phase=phase, pod_ips=("10.0.0.7",))
    return Event(
        f"{action}-{t}-{node}-{phase}", t, Source.K8S, "pods", action, Severity.INFO, "", context, k8s=k8s
    )


def _views(*events: Event) -> list[object]:
    return [v for ev in events for v in decode_views(None, event_to_proto(ev).SerializeToString())]


def test_a_repeated_pod_update_is_found_by_its_bytes_and_a_changed_record_is_not() -> None:
    engine = Engine()
    topo = engine.topo
    for v in _views(_pod(1 * SECOND, "created", phase="Pending"), _pod(2 * SECOND, "updated")):
        engine.process_view(v)
    rec = topo.pods["u1"]
    repeat = _views(_pod(3 * SECOND, "updated"))[0]
    assert topo.pod_unchanged(3 * SECOND, repeat.context, repeat.k8s, "updated")  # type: ignore[attr-defined]
    assert rec.updated == 3 * SECOND
    # Not for a created or a deleted.
    assert not topo.pod_unchanged(4 * SECOND, repeat.context, repeat.k8s, "created")  # type: ignore[attr-defined]
    assert not topo.pod_unchanged(4 * SECOND, repeat.context, repeat.k8s, "deleted")  # type: ignore[attr-defined]
    # A status change keeping the context and the pod IPs is one too; other pod IPs are not.
    status = _views(_pod(4 * SECOND, "updated", phase="Failed"))[0]
    assert status.k8s != repeat.k8s  # type: ignore[attr-defined]
    assert topo.pod_unchanged(4 * SECOND, status.context, status.k8s, "updated")  # type: ignore[attr-defined]
    moved = events_pb2.K8sEvent(kind="Pod", name="p", uid="u1", pod_ips=["10.0.0.8"]).SerializeToString()
    assert not topo.pod_unchanged(4 * SECOND, repeat.context, moved, "updated")  # type: ignore[attr-defined]
    assert not topo.pod_unchanged(0, repeat.context, repeat.k8s, "updated")  # type: ignore[attr-defined]
    # Another event moves the pod to another node: the remembered bytes would move it back, so
    # they are no longer a no-op, and applying them again does move it back.
    engine.process_view(_views(_pod(5 * SECOND, "ready", node="n2"))[0])
    assert rec.node == "n2"
    again = _views(_pod(6 * SECOND, "updated"))[0]
    assert not topo.pod_unchanged(6 * SECOND, again.context, again.k8s, "updated")  # type: ignore[attr-defined]
    engine.process_view(again)
    assert rec.node == "n1"
    assert topo.pod_unchanged(7 * SECOND, again.context, again.k8s, "updated")  # type: ignore[attr-defined]
    # A deleted pod's bytes are forgotten with it.
    engine.process_view(_views(_pod(8 * SECOND, "deleted"))[0])
    assert not topo._applied
    assert not topo._applied_key


def test_the_bytes_cache_is_not_in_snapshots() -> None:
    engine = Engine()
    for v in _views(_pod(1 * SECOND, "created"), _pod(2 * SECOND, "updated")):
        engine.process_view(v)
    assert engine.topo._applied
    restored = Engine.restore(engine.snapshot())
    assert restored.topo._applied == {}
    assert restored.topo._applied_key == {}
    assert restored.topo.pods["u1"].node == "n1"
    for v in _views(_pod(3 * SECOND, "updated"), _pod(4 * SECOND, "updated")):
        restored.process_view(v)
    assert restored.topo._applied


def test_what_is_not_an_events_message_is_refused_as_decode_events_refuses_it() -> None:
    for headers, data in ((BATCH, b"\xff\xfenot protobuf"), ({ENCODING_HEADER: "csv"}, b"")):
        with pytest.raises(DecodeError):
            decode_events(headers, data)
        with pytest.raises(DecodeError):
            decode_views(headers, data)
    assert [v.id for v in decode_views(None, event_to_proto(_pod(1, "updated")).SerializeToString())] == [
        "updated-1-n1-Running"
    ]


def test_a_corrupt_context_is_refused_when_the_event_is_parsed() -> None:
    view = EventView(id="bad", type="pods", action="created", context=b"\xff\xff\xff")
    with pytest.raises(DecodeError, match="bad"):
        full_event(view)
    with pytest.raises(DecodeError):
        Engine().process_view(view)


def test_a_malformed_retransmit_buffered_as_a_view_is_skipped_and_counted_not_raised_later() -> None:
    """A retransmit waits in the reorder buffer unparsed; its context is read only when its rule
    runs, during a LATER message. Malformed, it must not fail that message (nor a snapshot taken
    while it waits): it is skipped and counted (`undecodable`), the incidents are unchanged."""
    pbs = [event_to_proto(ev) for ev in generate("network_degradation", 0, "packet_loss").events]
    last = max(i for i, pb in enumerate(pbs) if pb.type == "tcp_retransmit")
    bad = EventView.FromString(pbs[last].SerializeToString())
    bad.id = "bad-retransmit"
    bad.context = b"\xff\xff\xff"

    def run(extra: list[Any]) -> tuple[list[Correlation], Engine]:
        engine = Engine()
        out: list[Correlation] = []
        for i, payload in enumerate(_batches(pbs, 1)):
            for v in decode_views(BATCH, payload):
                out += engine.process_view(v)
            if i == last and extra:
                out += engine.process_view(extra[0])
                assert any(entry[5] is bad for entry in engine.buffer), "it waits unparsed"
                Engine.restore(engine.snapshot())  # a snapshot while it waits: taken, it is left out
        return out + engine.finish(), engine

    clean, _ = run([])
    with_bad, engine = run([bad])
    assert [c for c in clean if c.type == "network_degradation"], "an incident was open to read it"
    assert with_bad == clean
    assert engine.undecodable == 1
