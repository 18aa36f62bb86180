"""Wire forms round-trip: bare Event, EventBatch, zstd and lz4 (written by tapio_publisher, read by
tapio_jetstream.decode); Correlation and Alert; corrupt input is a clear DecodeError."""

from __future__ import annotations

import pytest

from tapio.alerts.v1 import alerts_pb2
from tapio.correlations.v1 import correlations_pb2
from tapio.events.v1 import events_pb2
from tapio_jetstream.decode import decode_alert, decode_batch, decode_correlation, decode_events, decompress
from tapio_jetstream.errors import DecodeError
from tapio_publisher import codec
from tapio_publisher.codec import Compression, Compressor


def batch_bytes(events: list[events_pb2.Event], batch_id: str) -> bytes:
    return events_pb2.EventBatch(events=events, batch_id=batch_id).SerializeToString()


@pytest.mark.parametrize("kind", list(Compression))
def test_batch_round_trip(kind: Compression, events: list[events_pb2.Event]) -> None:
    payload = batch_bytes(events, "b-2")
    headers = {codec.ENCODING_HEADER: codec.ENCODING_BATCH}
    data = Compressor(kind).compress(payload)
    if kind is not Compression.NONE:
        headers[codec.COMPRESSION_HEADER] = kind.value
        assert len(data) < len(payload) / 3, "repetitive k8s context compresses well"
    batch = decode_batch(headers, data)
    assert batch.batch_id == "b-2"
    assert list(batch.events) == events
    assert decode_events(headers, data) == events


def test_bare_event_with_or_without_headers(events: list[events_pb2.Event]) -> None:
    ev = events[0]
    assert decode_events({codec.ENCODING_HEADER: codec.ENCODING_EVENT}, ev.SerializeToString()) == [ev]
    assert decode_events(None, ev.SerializeToString()) == [ev]


def test_cached_context_concatenates_into_a_valid_event(events: list[events_pb2.Event]) -> None:
    """Protobuf merges concatenated messages: serialized rest + a serialized Event holding only the
    Context (as the k8s collector caches it) = the Event."""
    ev = events[2]
    rest = events_pb2.Event()
    rest.CopyFrom(ev)
    rest.ClearField("context")
    only_context = events_pb2.Event(context=ev.context).SerializeToString()
    assert events_pb2.Event.FromString(rest.SerializeToString() + only_context) == ev


@pytest.mark.parametrize(
    ("headers", "data", "match"),
    [
        ({codec.COMPRESSION_HEADER: "gzip"}, b"x", "unknown Tapio-Compression 'gzip'"),
        ({codec.COMPRESSION_HEADER: "zstd"}, b"not zstd", "corrupt zstd payload"),
        ({codec.COMPRESSION_HEADER: "lz4"}, b"not lz4 at all", "corrupt lz4 payload"),
        ({codec.ENCODING_HEADER: "csv"}, b"", "unknown Tapio-Encoding 'csv'"),
        ({codec.ENCODING_HEADER: "batch"}, b"\x0a\xff\xff\xff", "not a valid batch payload"),
        ({}, b"\xff\xff", "not a valid event payload"),
    ],
)
def test_bad_messages_are_decode_errors(headers: dict[str, str], data: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_events(headers, data)


def test_decompression_bomb_is_refused() -> None:
    bomb = Compressor(Compression.ZSTD).compress(b"\0" * (2 * 1024 * 1024))
    with pytest.raises(DecodeError):
        decompress(bomb, "zstd", max_size=1024 * 1024)
    lz = Compressor(Compression.LZ4).compress(b"\0" * (2 * 1024 * 1024))
    with pytest.raises(DecodeError, match="expanding beyond"):
        decompress(lz, "lz4", max_size=1024 * 1024)


def test_correlation_and_alert_decode_and_need_an_id() -> None:
    corr = correlations_pb2.Correlation(id="c-1", revision=3, type="crash_loop")
    assert decode_correlation(None, corr.SerializeToString()) == [corr]
    zipped = Compressor(Compression.ZSTD).compress(corr.SerializeToString())
    assert decode_correlation({codec.COMPRESSION_HEADER: "zstd"}, zipped) == [corr]
    alert = alerts_pb2.Alert(id="a-1", title="checkout down")
    assert decode_alert({}, alert.SerializeToString()) == [alert]
    with pytest.raises(DecodeError, match="without an id"):
        decode_correlation(None, b"")
    with pytest.raises(DecodeError, match="not a valid Alert"):
        decode_alert(None, b"\xff\xff")


def test_the_reused_zstd_decompressor_decodes_after_a_corrupt_payload(events: list[events_pb2.Event]) -> None:
    """One decompressor per thread is reused across messages: a corrupt payload leaves it usable."""
    headers = {codec.ENCODING_HEADER: codec.ENCODING_BATCH, codec.COMPRESSION_HEADER: "zstd"}
    good = Compressor(Compression.ZSTD).compress(batch_bytes(events, "b-3"))
    assert decode_events(headers, good) == events
    with pytest.raises(DecodeError, match="corrupt zstd payload"):
        decode_events(headers, good[: len(good) // 2])
    assert decode_events(headers, good) == events
