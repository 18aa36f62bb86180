"""The HEC and _bulk receivers' fast JSON paths answer exactly as their full parse does."""

from __future__ import annotations

import gzip
import json

import httpx

from tapio_testing.receivers.bulk import BulkReceiver
from tapio_testing.receivers.hec import HecReceiver, parse_concatenated

EVENTS = [
    {"time": 1764579600.25, "event": {"id": f"a-{i}", "text": "x}{y\u00e9"}, "fields": {"n": str(i)}}
    for i in range(3)
]
CHANNEL = "0f5ba4b4-8d7e-4a64-9c3d-2b1f4f9b3a10"


def test_every_body_shape_parses_as_the_concatenated_reference() -> None:
    lines = [json.dumps(e) for e in EVENTS]
    bodies = {  # one object a line (the fast path), back to back, pretty-printed, blank lines around
        "\n".join(lines): EVENTS,
        "".join(lines): EVENTS,
        json.dumps(EVENTS[0], indent=2) + "\n" + lines[1]: EVENTS[:2],
        "\n\n" + lines[0] + "\n": EVENTS[:1],
    }
    for body, expected in bodies.items():
        assert parse_concatenated(body.encode()) == (expected, None)
    assert parse_concatenated(b'{"event": "a"}\n{"time": 1}')[1] == {
        "text": "Event field is required", "code": 12, "invalid-event-number": 1,
    }  # fmt: skip
    assert parse_concatenated(b'{"event": {}}')[1] == {
        "text": "Event field cannot be blank", "code": 13, "invalid-event-number": 0,
    }  # fmt: skip
    assert parse_concatenated(b'{"event": "a"}\n{"event": ')[1] == {
        "text": "Invalid data format", "code": 6, "invalid-event-number": 1,
    }  # fmt: skip
    assert parse_concatenated(b"  \n")[1] == {"text": "No data", "code": 5}


def test_hec_counts_the_same_whether_it_keeps_events_or_not() -> None:
    headers = {"Authorization": "Splunk t", "X-Splunk-Request-Channel": CHANNEL, "Content-Encoding": "gzip"}
    good = gzip.compress("\n".join(json.dumps(e) for e in EVENTS).encode())
    blank = gzip.compress(b'{"event": "a"}\n{"event": { }}')
    for keep in (True, False):
        with HecReceiver(token="t", ack=True, keep=keep) as hec, httpx.Client() as client:
            r = client.post(f"{hec.url}/services/collector/event", content=good, headers=headers)
            assert (r.status_code, r.json()) == (200, {"text": "Success", "code": 0, "ackId": 0})
            r = client.post(f"{hec.url}/services/collector/event", content=blank, headers=headers)
            assert (r.status_code, r.json()["code"], r.json()["invalid-event-number"]) == (400, 13, 1)
            assert hec.count == 3
            assert len(hec.latencies_ms) == 3
            assert len(hec.events) == (3 if keep else 0)


def test_bulk_answers_the_same_whether_it_keeps_documents_or_not() -> None:
    doc = {
        "@timestamp": "2026-12-01T09:00:00.250Z",
        "tapio": {"alert": {"id": "a", "revision": 1, "state": "firing"}},
    }
    body = "".join(
        json.dumps({"index": {"_id": f"a-{i}", "version": 5, "version_type": "external_gte"}})
        + "\n"
        + json.dumps(doc)
        + "\n"
        for i in range(2)
    ).encode()
    replies = []
    for keep in (True, False):
        with BulkReceiver(keep=keep) as es, httpx.Client() as client:
            r = client.post(
                f"{es.url}/idx/_bulk", content=body, headers={"Content-Type": "application/x-ndjson"}
            )
            bad = client.post(
                f"{es.url}/idx/_bulk",
                content=b'{"index": {}}\n{"x": \n',
                headers={"Content-Type": "application/x-ndjson"},
            )
            reply = r.json()
            reply.pop("took")
            replies.append(reply)
            assert bad.status_code == 400
            assert es.count == 2
            assert len(es.latencies_ms) == 2
            assert len(es.applied) == (2 if keep else 0)
    assert replies[0] == replies[1]
    assert [next(iter(i.values()))["status"] for i in replies[0]["items"]] == [201, 201]
