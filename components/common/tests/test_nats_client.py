"""TapioClient's header parse gives exactly what the installed nats-py's `Client._process_headers`
gives, for JetStream deliveries, status messages (404, 408, 409, 100 heartbeats with headers, 503)
and malformed blocks: if an upgrade of nats-py changes its parsing, these fail loudly."""

from __future__ import annotations

import asyncio

import nats.aio.client
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nats.aio.client import Client

from tapio_common.nats.client import TapioClient, header_key, parse_header_lines

BLOCKS = [
    # what the publisher stores (a JetStream delivery carries them back)
    b"NATS/1.0\r\nNats-Msg-Id: b-3f2a9c1e0d4b7a66-000123\r\nTapio-Encoding: batch\r\nTapio-Compression: zstd\r\n\r\n",
    b"NATS/1.0\r\nNats-Msg-Id: ev-1\r\nTapio-Encoding: event\r\n\r\n",
    # a dead letter (copied headers + Tapio-Error with a colon and spaces in its value)
    b"NATS/1.0\r\nTapio-Error: engine failed: KeyError: 'x'\r\nTapio-Stream: TAPIO_EVENTS\r\nTapio-Stream-Seq: 42\r\n\r\n",
    # atomic batch headers on the alerts stream
    b"NATS/1.0\r\nNats-Batch-Id: 9f\r\nNats-Batch-Sequence: 3\r\nNats-Batch-Commit: 1\r\n\r\n",
    # status messages of pull requests and push consumers (nats-py parses these itself)
    b"NATS/1.0 404 No Messages\r\n\r\n",
    b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 0\r\nNats-Pending-Bytes: 0\r\n\r\n",
    b"NATS/1.0 409 Consumer Deleted\r\n\r\n",
    b"NATS/1.0 409 Exceeded MaxWaiting\r\n\r\n",
    b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 1016\r\nNats-Last-Stream: 1024\r\n\r\n",
    b"NATS/1.0 100 FlowControl Request\r\n\r\n",
    b"NATS/1.0 503\r\n\r\n",
    # odd but possible forms
    b"NATS/1.0\r\n\r\n",
    b"NATS/1.0\r\n",
    b"NATS/1.0\r\nName:Value\r\nTabbed:\tv\r\n\r\n",
    b"NATS/1.0\r\nRepeated: 1\r\nRepeated: 2\r\n\r\n",
    b"NATS/1.0\r\nBad Name: skipped\r\nGood: kept\r\n\r\n",
    b"NATS/1.0\r\n  Padded  :  v  \r\n\r\n",
    b"NATS/1.0\r\nno colon here\r\nK: v\r\n\r\n",
    b"NATS/1.0\r\n: empty name\r\n\r\n",
    b"NATS/1.0\r\nUtf8: caf\xc3\xa9\r\nBroken: \xff\xfe\r\nN\xc3\xa4me: x\r\n\r\n",
    b"NATS/1.0\r\nCtl\x1cName: x\r\n\x1cLead: y\r\nTrail\x1c: z\r\n\r\n",
    b"NATS/1.0\r\nNul\x00: x\r\n\r\n",
]


Parsed = dict[str, str] | None


def both(block: bytes) -> tuple[Parsed, Parsed]:
    async def parse() -> tuple[Parsed, Parsed]:
        upstream: Parsed = await Client()._process_headers(block)
        ours = await TapioClient()._process_headers(block)
        return upstream, ours

    return asyncio.run(parse())


def test_nats_py_parses_header_lines_itself() -> None:
    """The path replaced here is nats-py's own line parser (not the optional fast_mail_parser)."""
    assert getattr(nats.aio.client, "parse_email", None) is None
    assert callable(Client._parse_header_lines)


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b[:40].decode("latin-1"))
def test_same_headers_as_nats_py(block: bytes) -> None:
    upstream, ours = both(block)
    assert ours == upstream


def test_status_messages_keep_their_status() -> None:
    """What the runtime's puller reads (Status / Description) from a 408 and a heartbeat."""
    _, expired = both(BLOCKS[5])
    _, heartbeat = both(BLOCKS[8])
    assert expired == {
        "Status": "408",
        "Description": "Request Timeout",
        "Nats-Pending-Messages": "0",
        "Nats-Pending-Bytes": "0",
    }
    assert heartbeat is not None
    assert heartbeat["Status"] == "100"
    assert heartbeat["Nats-Last-Stream"] == "1024"


def test_header_names_are_remembered_with_their_verdict() -> None:
    assert header_key(b" Nats-Msg-Id ") == "Nats-Msg-Id"
    assert header_key(b"Bad Name") is None
    assert header_key(b"N\xc3\xa4me") is None
    for _ in range(2):  # the second parse takes the names from the table
        assert parse_header_lines(b"Bad Name: x\r\nGood: y\r\n\r\n") == {"Good": "y"}


_text = st.binary(max_size=24).filter(lambda b: b"\r\n" not in b)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_text, st.sampled_from([b":", b": ", b"", b":\t"]), _text), max_size=6))
def test_any_header_block_parses_as_nats_py_does(lines: list[tuple[bytes, bytes, bytes]]) -> None:
    block = b"NATS/1.0\r\n" + b"".join(n + s + v + b"\r\n" for n, s, v in lines) + b"\r\n"
    upstream, ours = both(block)
    assert ours == upstream
