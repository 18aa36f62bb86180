"""A local Elasticsearch `_bulk` endpoint: NDJSON actions, documents by `_id`, external versioning,
an item status each; items can be made to fail (429 throttled, 400 mapping error). Records what arrived.

    with BulkReceiver() as es:   # es.url
        es.docs[("tapio-alerts", "<alert id>")] -> (version, document)
        es.throttle_next = 5    # the next 5 items answer 429
        es.reject_ids = {"<alert id>"}   # those answer 400 mapper_parsing_exception
"""

from __future__ import annotations

import calendar
import time
from collections import Counter
from typing import Any

import msgspec

from tapio_testing.receivers.httpbase import Receiver, Reply


class BulkReceiver(Receiver):
    def __init__(self, port: int = 0, *, keep: bool = True) -> None:
        super().__init__(port)
        self.keep = keep
        self.docs: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.applied: list[tuple[str, int, dict[str, Any]]] = []  # (_id, version, doc) in arrival order
        self.count = 0
        self.latencies_ms: list[float] = []
        self.throttle_next = 0
        self.reject_ids: set[str] = set()
        self.requests = 0

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        route = path.split("?", 1)[0].rstrip("/")
        if method != "POST" or not route.endswith("/_bulk"):
            return Reply(
                404,
                {
                    "error": {"type": "no_handler", "reason": f"no handler for {method} {route}"},
                    "status": 404,
                },
            )
        if "ndjson" not in headers.get("content-type", "") and "json" not in headers.get("content-type", ""):
            return Reply(406, {"error": "Content-Type header is not supported", "status": 406})
        default_index = route[: -len("/_bulk")].strip("/")
        lines = body.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        else:
            return _bad("The bulk request must be terminated by a newline [\\n]")
        started = time.perf_counter()
        items: list[dict[str, Any]] = []
        i = 0
        now = time.time()
        with self.lock:
            self.requests += 1
            while i < len(lines):
                try:
                    action = _decode(lines[i])
                    ((op, meta),) = action.items()
                except (msgspec.DecodeError, ValueError, TypeError, AttributeError):
                    return _bad(f"Malformed action/metadata line [{i + 1}]")
                if op not in ("index", "create"):
                    return _bad(f"action [{op}] not supported by this receiver")
                try:  # kept: the whole document; else parsed (syntax checked), only its time built
                    doc = _decode(lines[i + 1]) if self.keep else _STAMPED.decode(lines[i + 1])
                except (IndexError, msgspec.DecodeError):
                    return _bad(f"no document for action line [{i + 1}]")
                i += 2
                items.append({op: self._apply(op, meta, doc, default_index, now)})
        took = int((time.perf_counter() - started) * 1000)
        errors = any(next(iter(it.values()))["status"] >= 300 for it in items)
        return Reply(200, {"took": took, "errors": errors, "items": items})

    def _apply(
        self, op: str, meta: dict[str, Any], doc: Any, default_index: str, now: float
    ) -> dict[str, Any]:
        index = meta.get("_index") or default_index
        doc_id = str(meta.get("_id", ""))
        base = {"_index": index, "_id": doc_id}
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return {
                **base,
                "status": 429,
                "error": {
                    "type": "es_rejected_execution_exception",
                    "reason": "rejected execution (queue capacity 200)",
                },
            }
        if doc_id in self.reject_ids:
            return {
                **base,
                "status": 400,
                "error": {
                    "type": "mapper_parsing_exception",
                    "reason": "failed to parse field [event.severity]",
                },
            }
        key = (index, doc_id)
        current = self.docs.get(key)
        vtype = meta.get("version_type", "internal")
        if vtype in ("external", "external_gte"):
            version = int(meta["version"])
            if current is not None and (
                version < current[0] or (vtype == "external" and version == current[0])
            ):
                return {**base, "status": 409, "error": {
                    "type": "version_conflict_engine_exception",
                    "reason": f"[{doc_id}]: version conflict, current version [{current[0]}] is higher or equal to the one provided [{version}]",
                }}  # fmt: skip
        else:
            version = (current[0] + 1) if current is not None else 1
        if op == "create" and current is not None:
            return {
                **base,
                "status": 409,
                "error": {"type": "version_conflict_engine_exception", "reason": "document already exists"},
            }
        self.docs[key] = (version, doc if self.keep else {})
        self.count += 1
        if self.keep:
            self.applied.append((doc_id, version, doc))
        ts = doc.get("@timestamp") if isinstance(doc, dict) else doc.timestamp
        if isinstance(ts, str):
            self.latencies_ms.append((now - _parse_ts(ts)) * 1000)
        return {**base, "_version": version, "result": "updated" if current else "created",
                "status": 200 if current else 201}  # fmt: skip

    def arrivals(self) -> Counter[tuple[str, int, str]]:
        """How often each (alert id, revision, state) was indexed."""
        with self.lock:
            return Counter(
                (
                    d["tapio"]["alert"]["id"],
                    int(d["tapio"]["alert"]["revision"]),
                    d["tapio"]["alert"]["state"],
                )
                for _, _, d in self.applied
            )


class _Stamped(msgspec.Struct):
    """What a receiver that keeps nothing reads of a document: its `@timestamp` (for latency)."""

    timestamp: Any = msgspec.field(default=None, name="@timestamp")


_STAMPED = msgspec.json.Decoder(_Stamped)
_decode = msgspec.json.decode


def _bad(reason: str) -> Reply:
    return Reply(400, {"error": {"type": "illegal_argument_exception", "reason": reason}, "status": 400})


_SECONDS: dict[str, int] = {}  # "2026-12-01T09:00:00" -> epoch seconds (strptime costs ~10 us a call)


def _parse_ts(text: str) -> float:
    base, _, frac = text.rstrip("Z").partition(".")
    seconds = _SECONDS.get(base)
    if seconds is None:
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        seconds = _SECONDS[base] = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return seconds + (float(f"0.{frac}") if frac else 0.0)
