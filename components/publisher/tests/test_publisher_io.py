"""The publisher against a real JetStream: acks, dedup, backpressure, bad input, receipts."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import nats
import pytest
from nats.aio.client import Client

from tapio.events.v1 import events_pb2
from tapio_common.model import Context, Event, Source
from tapio_common.nats.client import TapioClient
from tapio_jetstream import decode_events
from tapio_jetstream.dlq import publish_dead_letter
from tapio_jetstream.layout import production_layout
from tapio_jetstream.streams import apply_layout
from tapio_publisher import Publisher, PublisherSettings, PublishRejectedError, TooLargeError
from tapio_publisher.codec import COMPRESSION_HEADER, ENCODING_HEADER, MSG_ID_HEADER
from tapio_publisher.errors import EncodeError
from tapio_testing.jetstream import JetStreamServer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def nc(jetstream: JetStreamServer) -> AsyncIterator[Client]:
    client = await nats.connect(jetstream.url, reconnect_time_wait=0.2, max_reconnect_attempts=-1)
    await apply_layout(client.jetstream(), 1, layout=production_layout(1, scale=0.001))
    yield client
    await client.close()


def settings(tmp_path: Path, **kw: object) -> PublisherSettings:
    base: dict[str, object] = {"spool_dir": str(tmp_path / "spool"), "batch_linger": 0.01}
    base.update(kw)
    return PublisherSettings(**base)  # type: ignore[arg-type]


async def stream_messages(nc: Client, stream: str) -> list[tuple[dict[str, str], bytes]]:
    js = nc.jetstream()
    info = await js.stream_info(stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        out.append((dict(msg.headers or {}), msg.data or b""))
    return out


async def stream_events(nc: Client, stream: str = "TAPIO_EVENTS") -> list[events_pb2.Event]:
    return [e for headers, data in await stream_messages(nc, stream) for e in decode_events(headers, data)]


def metric(pub: Publisher, name: str, **labels: str) -> float:
    value = pub.metrics.base.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.mark.parametrize("compression", ["zstd", "lz4", "none"])
async def test_batches_land_acked_decodable_and_counted(
    nc: Client, tmp_path: Path, events: list[events_pb2.Event], compression: str
) -> None:
    for ev in events[:20]:
        ev.ClearField("id")
    async with Publisher(settings(tmp_path, compression=compression), nc=nc) as pub:
        await pub.publish_many(events)
        with anyio.fail_after(20):
            await pub.flush()
        assert metric(pub, "tapio_publisher_events_published_total") == len(events)
        assert metric(pub, "tapio_publisher_events_received_total") == len(events)
    stored = await stream_events(nc)
    assert sorted(e.id for e in stored) == sorted(e.id for e in events), "ids were assigned in place"
    assert all(e.id for e in stored)
    by_id = {e.id: e for e in events}
    assert all(by_id[e.id] == e for e in stored)
    headers = [h for h, _ in await stream_messages(nc, "TAPIO_EVENTS")]
    assert all(h[ENCODING_HEADER] == "batch" and h[MSG_ID_HEADER] for h in headers)
    if compression != "none":
        assert any(h.get(COMPRESSION_HEADER) == compression for h in headers)


async def test_event_mode_uses_the_event_id_and_the_server_drops_repeats(
    nc: Client, tmp_path: Path, events: list[events_pb2.Event]
) -> None:
    async with Publisher(settings(tmp_path, batch_max_events=1), nc=nc) as pub:
        await pub.publish_many(events[:100])
        await pub.publish_many(events[:100])  # a retry: same ids
        with anyio.fail_after(20):
            await pub.flush()
    messages = await stream_messages(nc, "TAPIO_EVENTS")
    assert len(messages) == 100
    by_id = {ev.id: ev for ev in events[:100]}
    for headers, data in messages:
        assert headers[ENCODING_HEADER] == "event"
        assert decode_events(headers, data) == [by_id.pop(headers[MSG_ID_HEADER])]
    assert not by_id


async def test_publish_message_receipt_and_dedup(nc: Client, tmp_path: Path) -> None:
    async with Publisher(settings(tmp_path), nc=nc) as pub:
        first = await pub.publish_message(
            "tapio.correlations.high.crash_loop", b"corr-1", msg_id="corr-1", headers={"X": "1"}
        )
        again = await pub.publish_message("tapio.correlations.high.crash_loop", b"corr-1", msg_id="corr-1")
        with anyio.fail_after(10):
            ack1, ack2 = await first.wait(), await again.wait()
    assert (ack1.stream, ack1.seq, ack1.duplicate) == ("TAPIO_CORRELATIONS", 1, False)
    assert (ack2.stream, ack2.seq) == ("TAPIO_CORRELATIONS", 1), "the repeat is the same stored message"
    assert await stream_messages(nc, "TAPIO_CORRELATIONS") == [
        ({"X": "1", "Nats-Msg-Id": "corr-1"}, b"corr-1")
    ]


async def test_backpressure_waits_when_the_window_is_full(
    nc: Client, tmp_path: Path, events: list[events_pb2.Event]
) -> None:
    async with Publisher(settings(tmp_path, batch_max_events=5, max_inflight=1), nc=nc) as pub:
        peak = 0
        for i in range(0, len(events), 50):
            await pub.publish_many(events[i : i + 50])
            peak = max(peak, int(metric(pub, "tapio_publisher_inflight_messages")))
        with anyio.fail_after(20):
            await pub.flush()
        waits = metric(pub, "tapio_publisher_backpressure_wait_seconds_count")
        assert waits > 0, "producers waited for the window"
        assert peak <= 1
        assert metric(pub, "tapio_publisher_events_published_total") == len(events)
    assert len(await stream_events(nc)) == len(events)


async def test_too_large_event_raises_names_the_size_and_is_counted(
    nc: Client, tmp_path: Path, events: list[events_pb2.Event]
) -> None:
    huge = events[0]
    huge.message = "x" * 300_000
    async with Publisher(settings(tmp_path, max_msg_size=256 * 1024), nc=nc) as pub:
        with pytest.raises(TooLargeError) as exc:
            await pub.publish_many(events[:10])
        assert exc.value.size > 300_000
        assert str(exc.value.size) in str(exc.value)
        assert metric(pub, "tapio_publisher_events_dropped_total", reason="too_large") == 1
        with anyio.fail_after(20):
            await pub.flush()
    assert len(await stream_events(nc)) == 9, "the other events of the call were published"


async def test_unencodable_model_event_names_the_field(nc: Client, tmp_path: Path) -> None:
    bad = Event(id="e-1", source=Source.K8S, type="pods", action="created", context=Context(pid=2**40))
    async with Publisher(settings(tmp_path), nc=nc) as pub:
        with pytest.raises(EncodeError) as exc:
            await pub.publish_model(bad)
        assert exc.value.field == "context.pid"
        assert metric(pub, "tapio_publisher_events_dropped_total", reason="encode_error") == 1
        good = Event(
            id="e-2", source=Source.K8S, type="pods", action="created", context=Context(namespace="a")
        )
        await pub.publish_model(good)
        with anyio.fail_after(20):
            await pub.flush()
    assert [e.id for e in await stream_events(nc)] == ["e-2"]


async def test_event_without_source_is_refused_and_the_rest_published(
    nc: Client, tmp_path: Path, events: list[events_pb2.Event]
) -> None:
    events[3].ClearField("source")
    async with Publisher(settings(tmp_path), nc=nc) as pub:
        with pytest.raises(EncodeError) as exc:
            await pub.publish_many(events[:10])
        assert exc.value.field == "source"
        with anyio.fail_after(20):
            await pub.flush()
        assert metric(pub, "tapio_publisher_events_dropped_total", reason="encode_error") == 1
    assert sorted(e.id for e in await stream_events(nc)) == sorted(e.id for e in events[:10] if e.source)


async def test_message_refused_by_the_stream_is_dropped_counted_and_reported(
    nc: Client, tmp_path: Path
) -> None:
    await nc.jetstream().update_stream(name="TAPIO_ALERTS", subjects=["tapio.alerts.>"], max_msg_size=1024)
    async with Publisher(settings(tmp_path), nc=nc) as pub:
        receipt = await pub.publish_message("tapio.alerts.critical.web", b"a" * 5000, msg_id="alert-1")
        with anyio.fail_after(10), pytest.raises(PublishRejectedError, match="rejected"):
            await receipt.wait()
        assert metric(pub, "tapio_publisher_events_dropped_total", reason="rejected") == 1
        assert pub.spooling is False, "a permanent refusal is not retried"


async def test_dead_letter_carries_the_reason_and_is_published_once(nc: Client, tmp_path: Path) -> None:
    original = {"Nats-Msg-Id": "batch-7", "Tapio-Encoding": "batch", "Tapio-Compression": "zstd"}
    async with Publisher(settings(tmp_path), nc=nc) as pub:
        for _ in range(2):  # a consumer retrying after a crash: same stream sequence, one dead letter
            receipt = await publish_dead_letter(
                pub, "correlator", b"payload", error="bad\nbatch: cannot decode", stream="TAPIO_EVENTS",
                stream_seq=42, headers=original,
            )  # fmt: skip
            with anyio.fail_after(10):
                ack = await receipt.wait()
            assert (ack.stream, ack.seq) == ("TAPIO_DLQ", 1)
    ((headers, data),) = await stream_messages(nc, "TAPIO_DLQ")
    assert data == b"payload"
    assert headers["Tapio-Error"] == "bad batch: cannot decode"
    assert (headers["Tapio-Stream-Seq"], headers["Tapio-Stream"]) == ("42", "TAPIO_EVENTS")
    assert headers["Nats-Msg-Id"] == "dlq:correlator:TAPIO_EVENTS:42"
    assert headers["Tapio-Compression"] == "zstd", "the original headers travel along for decoding"


async def test_a_caller_that_never_yields_still_gets_lingered_batches_out(nc: Client, tmp_path: Path) -> None:
    """A producer behind its rate calls publish_encoded_many back to back without yielding: the
    batch of a rare subject whose linger passed goes out with the next call, not when the linger
    task gets a turn (it held such batches for seconds: late revisions in the end-to-end bench)."""
    rare = "tapio.events.k8s.default.pods.evicted"
    busy = "tapio.events.k8s.default.pods.updated"
    evicted = events_pb2.Event(id="rare-1", type="pods", action="evicted").SerializeToString()
    async with Publisher(settings(tmp_path, batch_linger=0.05), nc=nc) as pub:
        await pub.publish_encoded_many(rare, [evicted])
        time.sleep(0.1)  # busy past the linger: the linger task had no turn meanwhile  # noqa: ASYNC251
        updated = events_pb2.Event(id="busy-1", type="pods", action="updated").SerializeToString()
        await pub.publish_encoded_many(busy, [updated])
        deadline = pub._encoder.batcher.next_deadline()
        assert deadline is not None
        assert deadline > time.monotonic(), "only the batch opened just now is still open"
        with anyio.fail_after(20):
            await pub.flush()
    assert {e.id for e in await stream_events(nc)} == {"rare-1", "busy-1"}


@pytest.mark.parametrize("client", ["nats-py", "tapio"])
async def test_publish_messages_stores_each_once_with_or_without_receipts(
    jetstream: JetStreamServer, tmp_path: Path, client: str
) -> None:
    # a TapioClient settles the acks as it reads them (deliver_directly), nats-py's Client through
    # the inbox subscription's callback: the same outcome either way
    nc = TapioClient() if client == "tapio" else Client()
    await nc.connect(jetstream.url)
    try:
        await apply_layout(nc.jetstream(), 1, layout=production_layout(1, scale=0.001))
        subject = "tapio.correlations.high.crash_loop"
        async with Publisher(settings(tmp_path), nc=nc) as pub:
            receipts = await pub.publish_messages(
                [(subject, f"c-{i}".encode(), f"c-{i}:1") for i in range(3)]
            )
            with anyio.fail_after(10):
                acks = [await r.wait() for r in receipts]
            none = await pub.publish_messages(
                [(subject, b"c-1", "c-1:1"), (subject, b"c-3", "c-3:1")], receipts=False
            )
            with anyio.fail_after(10):
                await pub.flush()
            assert none == []
            assert metric(pub, "tapio_publisher_events_published_total") == 5
        assert [(a.stream, a.seq, a.duplicate) for a in acks] == [
            ("TAPIO_CORRELATIONS", i, False) for i in (1, 2, 3)
        ]
        stored = await stream_messages(nc, "TAPIO_CORRELATIONS")
        assert stored == [({"Nats-Msg-Id": f"c-{i}:1"}, f"c-{i}".encode()) for i in range(4)], (
            "c-1 again is dropped"
        )
    finally:
        await nc.close()
