"""apply_layout against a real server: idempotent, updates limits, refuses incompatible changes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import nats
import pytest
from nats.aio.client import Client
from nats.js.api import StorageType

from tapio_jetstream.errors import LayoutError
from tapio_jetstream.layout import EVENTS, production_layout
from tapio_jetstream.streams import apply_layout, layout_status
from tapio_testing.jetstream import JetStreamServer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def nc(jetstream: JetStreamServer) -> AsyncIterator[Client]:
    client = await nats.connect(jetstream.url)
    yield client
    await client.close()


async def test_apply_creates_then_is_idempotent(nc: Client) -> None:
    js = nc.jetstream()
    topo = production_layout(1, scale=0.001)
    first = await apply_layout(js, 1, layout=topo)
    assert {c.action for c in first.changes} == {"create"}
    assert len(first.changes) == 8
    second = await apply_layout(js, 1, layout=topo)
    assert {c.action for c in second.changes} == {"unchanged"}
    info = await js.stream_info(EVENTS)
    assert info.config.max_msgs == 10_000
    assert info.config.duplicate_window == 120.0
    assert info.config.max_msg_size == 1024 * 1024
    consumer = await js.consumer_info(EVENTS, "correlator")
    assert (consumer.config.max_deliver, consumer.config.ack_wait) == (5, 30.0)


async def test_changed_limits_are_updated(nc: Client) -> None:
    js = nc.jetstream()
    await apply_layout(js, 1, layout=production_layout(1, scale=0.001))
    report = await apply_layout(js, 1, layout=production_layout(1, scale=0.002))
    (change,) = [c for c in report.changes if c.action == "update"]
    assert change.name == EVENTS
    assert "max_msgs: 10000 -> 20000" in change.changes
    assert (await js.stream_info(EVENTS)).config.max_msgs == 20_000


async def test_dry_run_changes_nothing(nc: Client) -> None:
    js = nc.jetstream()
    report = await apply_layout(js, 1, layout=production_layout(1, scale=0.001), dry_run=True)
    assert report.dry_run
    assert {c.action for c in report.changes} == {"create"}
    assert await js.streams_info() == []


async def test_incompatible_storage_change_is_refused_clearly(nc: Client) -> None:
    js = nc.jetstream()
    await js.add_stream(name=EVENTS, subjects=["tapio.events.>"], storage=StorageType.MEMORY)
    with pytest.raises(LayoutError, match=r"stream TAPIO_EVENTS cannot change storage: memory -> file"):
        await apply_layout(js, 1, layout=production_layout(1, scale=0.001))
    assert len(await js.streams_info()) == 1, "nothing applied when one change is refused"
    report = await apply_layout(js, 1, layout=production_layout(1, scale=0.001), dry_run=True)
    assert [c.action for c in report.changes if c.name == EVENTS] == ["refused"]


async def test_three_replicas_on_a_single_server_is_a_clear_error(nc: Client) -> None:
    with pytest.raises(LayoutError, match=r"replicas.*single server takes --replicas 1"):
        await apply_layout(nc.jetstream(), 3)


async def test_status_shows_messages_bytes_and_backlogs(nc: Client) -> None:
    js = nc.jetstream()
    await apply_layout(js, 1, layout=production_layout(1, scale=0.001))
    for i in range(7):
        await js.publish("tapio.events.k8s.a.pods.created", b"x" * 100, headers={"Nats-Msg-Id": f"m{i}"})
    rows = {s.name: s for s in await layout_status(js)}
    ev = rows[EVENTS]
    assert (ev.exists, ev.messages, ev.storage, ev.replicas) == (True, 7, "file", 1)
    assert ev.bytes > 700
    assert {c.name: c.pending for c in ev.consumers} == {"correlator": 7, "pipeline": 7}
    assert rows["TAPIO_DLQ"].messages == 0


async def test_status_of_a_fresh_server_lists_missing_streams(nc: Client) -> None:
    rows = await layout_status(nc.jetstream())
    assert [r.exists for r in rows] == [False] * 5


async def test_the_correlator_consumer_takes_the_whole_stream_and_filters_in_the_client(nc: Client) -> None:
    """filter_at "client": the durable has the one filter; its spec says what the runtime keeps."""
    js = nc.jetstream()
    layout = production_layout(1, scale=0.001)
    spec = layout.consumer("correlator")
    await apply_layout(js, 1, layout=layout)
    consumer = await js.consumer_info(EVENTS, "correlator")
    assert (consumer.config.filter_subject, consumer.config.filter_subjects) == ("tapio.events.>", None)
    for subject in ("tapio.events.ebpf.process_exec.debug", "tapio.events.ebpf.oom_kill.critical"):
        await js.publish(subject, b"x")
    assert (await js.consumer_info(EVENTS, "correlator")).num_pending == 2, (
        "both delivered: skipped in the client"
    )
    assert not spec.takes("tapio.events.ebpf.process_exec.debug")


async def test_a_consumer_filtered_on_the_server_gets_its_filter_subjects_and_only_those_messages(
    nc: Client,
) -> None:
    js = nc.jetstream()
    layout = production_layout(1, scale=0.001)
    spec = attrs.evolve(layout.consumer("correlator"), filter_at="server")
    await apply_layout(js, 1, layout=attrs.evolve(layout, consumers=(spec, layout.consumer("pipeline"))))
    consumer = await js.consumer_info(EVENTS, "correlator")
    assert tuple(consumer.config.filter_subjects or ()) == spec.filter_subjects
    for subject in ("tapio.events.ebpf.process_exec.debug", "tapio.events.ebpf.oom_kill.critical"):
        await js.publish(subject, b"x")
    consumer = await js.consumer_info(EVENTS, "correlator")
    assert consumer.num_pending == 1, "process_exec never reaches it"
    assert (await js.consumer_info(EVENTS, "pipeline")).num_pending == 2


async def test_a_correlator_consumer_of_the_filter_subjects_is_updated_to_the_one_filter(
    nc: Client,
) -> None:
    """A durable provisioned by an earlier release (the filter list on the server) is updated in place."""
    js = nc.jetstream()
    layout = production_layout(1, scale=0.001)
    spec = layout.consumer("correlator")
    old = attrs.evolve(spec, filter_at="server")
    await apply_layout(js, 1, layout=attrs.evolve(layout, consumers=(old,)))
    report = await apply_layout(js, 1, layout=layout)
    (change,) = [c for c in report.changes if c.action == "update"]
    assert change.name == f"{EVENTS}/correlator"
    consumer = await js.consumer_info(EVENTS, "correlator")
    assert consumer.config.filter_subject == "tapio.events.>"
    assert not consumer.config.filter_subjects
