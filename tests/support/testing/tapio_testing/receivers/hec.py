"""A local Splunk HTTP Event Collector: event endpoint, token check, channel header, indexer
acknowledgement endpoint, 503 busy, error codes as Splunk documents them. Records what arrived.

    with HecReceiver(token="t0k3n", ack=True) as hec:   # hec.url -> http://127.0.0.1:PORT
        ...; hec.busy = True  (answers 503 code 9) ; hec.stop(); hec.start()  (state kept)
        hec.indexing = False  (acks answer false: accepted, not indexed yet, as an indexer behind)

`stop()` models HEC unreachable with its indexer alive (Splunk keeps ack state per channel
then); a new HecReceiver models an indexer restarted (its ack state lost, ack ids from 0 again).
        hec.events -> [(arrival monotonic-free wall time, event object)]
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections import Counter
from typing import Any

import msgspec

from tapio_testing.receivers.httpbase import Receiver, Reply

SUCCESS = {"text": "Success", "code": 0}


class HecReceiver(Receiver):
    def __init__(
        self, token: str = "hec-token", *, ack: bool = False, port: int = 0, keep: bool = True
    ) -> None:
        super().__init__(port)
        self.token = token
        self.ack = ack
        self.busy = False
        self.indexing = True
        self.keep = keep  # keep the events (False: count and measure only, for benchmarks)
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.count = 0
        self.latencies_ms: list[float] = []
        self.requests = 0
        self.acked_polls = 0
        self._acks: dict[str, dict[int, bool]] = {}
        self._next_ack: dict[str, int] = {}

    # --- protocol -----------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        route = path.split("?", 1)[0].rstrip("/")
        if method != "POST":
            return Reply(405, {"text": "Method not allowed", "code": 5})
        auth = headers.get("authorization", "")
        if not auth:
            return Reply(401, {"text": "Token is required", "code": 2})
        if auth != f"Splunk {self.token}":
            return Reply(403, {"text": "Invalid token", "code": 4})
        if self.busy:
            return Reply(503, {"text": "Server is busy", "code": 9})
        channel = headers.get("x-splunk-request-channel", "")
        if self.ack:
            if not channel:
                return Reply(400, {"text": "Data channel is missing", "code": 10})
            try:
                uuid.UUID(channel)
            except ValueError:
                return Reply(400, {"text": "Invalid data channel", "code": 11})
        if headers.get("content-encoding", "") == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError):
                return Reply(400, {"text": "Invalid data format", "code": 6})
        if route in ("/services/collector/event", "/services/collector"):
            return self._events(body, channel)
        if route == "/services/collector/ack":
            return self._ack_query(body, channel)
        return Reply(404, {"text": "The requested URL was not found on this server.", "code": 404})

    def _events(self, body: bytes, channel: str) -> Reply:
        events: list[Any] | None = None if self.keep else _envelopes(body)
        if events is None:  # kept, or not the plain shape the fast path reads: parsed in full
            events, bad = parse_concatenated(body)
            if bad is not None:
                return Reply(400, bad)
        now = time.time()
        with self.lock:
            self.requests += 1
            self.count += len(events)
            latencies = self.latencies_ms
            for ev in events:
                if self.keep:
                    self.events.append((now, ev))
                stamp = ev.time if isinstance(ev, _Envelope) else ev.get("time")
                if stamp is not None:
                    latencies.append((now - float(stamp)) * 1000)
            if not self.ack:
                return Reply(200, SUCCESS)
            ack_id = self._next_ack.get(channel, 0)
            self._next_ack[channel] = ack_id + 1
            self._acks.setdefault(channel, {})[ack_id] = True  # indexed on arrival
        return Reply(200, {**SUCCESS, "ackId": ack_id})

    def _ack_query(self, body: bytes, channel: str) -> Reply:
        if not self.ack:
            return Reply(400, {"text": "ACK is disabled", "code": 14})
        try:
            ids = json.loads(body)["acks"]
        except (ValueError, KeyError, TypeError):
            return Reply(400, {"text": "Invalid data format", "code": 6})
        with self.lock:
            known = self._acks.get(channel, {})
            if self.indexing:  # a true status is answered once, then forgotten (as Splunk does)
                answer = {str(i): known.pop(int(i), False) for i in ids}
            else:
                answer = {str(i): False for i in ids}
            self.acked_polls += 1
        return Reply(200, {"acks": answer})

    # --- what arrived -------------------------------------------------------------------------

    def alerts(self) -> list[dict[str, Any]]:
        with self.lock:
            return [ev["event"] for _, ev in self.events]

    def arrivals(self) -> Counter[tuple[str, int, str]]:
        """How often each (alert id, revision, state) arrived."""
        return Counter((a["id"], int(a["revision"]), a["state"]) for a in self.alerts())


class _Envelope(msgspec.Struct):
    """What a receiver that keeps nothing reads of an event object (the rest is parsed, not built)."""

    event: msgspec.Raw = msgspec.Raw(b"")
    time: float | str | None = None


_ENVELOPES = msgspec.json.Decoder(_Envelope)
_BLANK = (b'""', b"null", b"{}")


def _envelopes(body: bytes) -> list[_Envelope] | None:
    """The fast path of a body of one event object a line (what the exporter sends): each line is
    parsed (syntax checked) without building its event. None when any line is not such an object
    with a non-blank `event`: `parse_concatenated` then gives the exact answer."""
    out: list[_Envelope] = []
    try:
        for line in body.split(b"\n"):
            if not line.strip():
                continue
            env = _ENVELOPES.decode(line)
            raw = bytes(env.event)
            if not raw or (len(raw) <= 8 and msgspec.json.encode(msgspec.json.decode(raw)) in _BLANK):
                return None
            out.append(env)
    except msgspec.DecodeError:
        return None
    return out or None


def parse_concatenated(body: bytes) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """HEC's body: JSON objects one after another. Returns (events, error reply or None)."""
    fast = _objects(body)
    if fast is not None:
        return fast, None
    text = body.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    events: list[dict[str, Any]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            break
        try:
            obj, i = decoder.raw_decode(text, i)
        except ValueError:
            return [], {"text": "Invalid data format", "code": 6, "invalid-event-number": len(events)}
        if not isinstance(obj, dict) or "event" not in obj:
            return [], {"text": "Event field is required", "code": 12, "invalid-event-number": len(events)}
        if obj["event"] in ("", None, {}):
            return [], {
                "text": "Event field cannot be blank",
                "code": 13,
                "invalid-event-number": len(events),
            }
        events.append(obj)
    if not events:
        return [], {"text": "No data", "code": 5}
    return events, None


def _objects(body: bytes) -> list[dict[str, Any]] | None:
    """Every line of `body` decoded (msgspec, several times json's speed) when each is one event
    object with a non-blank `event`; None otherwise (the caller's exact parse then answers)."""
    out: list[dict[str, Any]] = []
    try:
        for line in body.split(b"\n"):
            if not line.strip():
                continue
            obj = msgspec.json.decode(line)
            if not isinstance(obj, dict) or obj.get("event", "") in ("", None, {}):
                return None
            out.append(obj)
    except msgspec.DecodeError:
        return None
    return out or None
