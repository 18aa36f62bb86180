"""Decoding of the API server's raw list and watch bodies into digests, in one typed msgspec pass
that builds only the fields of domain.schema. A body the typed pass refuses (an ERROR event, a
bookmark of an odd shape, a malformed or foreign object) goes through a slower second pass that
says what it is. Pure: fed by the reflector's reader threads with the bytes the client received.

A watch line decodes to one of:
  ("ADDED" | "MODIFIED" | "DELETED", Digest), ("BOOKMARK", resourceVersion),
  ("GONE", message) for an ERROR event with code 410, ("ERROR", the status as JSON text),
  (drop reason, detail) with reason malformed | unknown_kind | unknown_type | oversized."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import msgspec

from tapio_collector_k8s.domain import schema as s
from tapio_collector_k8s.domain.digest import KINDS, Digest, MalformedObject, of_struct

Item = tuple[str, Any]
Page = tuple[str, str | None, list[Digest], dict[str, int]]  # list rv, continue, digests, drops
OBJECT_EVENTS = frozenset(("ADDED", "MODIFIED", "DELETED"))


class Decoders:
    """The msgspec decoders of one resource (built once per resource: `decoders(resource)`)."""

    def __init__(self, resource: str) -> None:
        obj = s.OBJECTS[resource]
        self.resource = resource
        self.watch = msgspec.json.Decoder(s.WatchEvent[obj], strict=False)  # type: ignore[valid-type]
        self.list = msgspec.json.Decoder(s.ListBody[obj], strict=False)  # type: ignore[valid-type]
        self.object = msgspec.json.Decoder(obj, strict=False)
        self.raw_watch = msgspec.json.Decoder(s.RawWatchEvent)
        self.raw_list = msgspec.json.Decoder(s.RawList)


@cache
def decoders(resource: str) -> Decoders:
    return Decoders(resource)


def _drop_reason(e: MalformedObject) -> str:
    return "unknown_kind" if "unexpected kind" in str(e) else "malformed"


def watch_line(resource: str, line: bytes | memoryview, max_bytes: int) -> Item:
    """One JSON line of a watch stream of `resource`."""
    if len(line) > max_bytes:
        return ("oversized", f"{len(line)} bytes > {max_bytes}")
    dec = decoders(resource)
    try:
        ev: s.WatchEvent[s.AnyObj] = dec.watch.decode(line)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return _slow_watch_line(dec, line)
    kind = ev.type
    if kind in OBJECT_EVENTS:
        try:
            return (kind, of_struct(resource, ev.object))
        except MalformedObject as e:
            return (_drop_reason(e), str(e))
    if kind == "BOOKMARK":
        meta = ev.object.metadata
        if meta is None or not meta.resource_version:
            return ("malformed", "bookmark without resourceVersion")
        return ("BOOKMARK", meta.resource_version)
    if kind == "ERROR":  # a Status decoded as the resource's Struct: look again
        return _slow_watch_line(dec, line)
    return ("unknown_type", f"watch event type {kind!r}")


def _slow_watch_line(dec: Decoders, line: bytes | memoryview) -> Item:
    try:
        ev = dec.raw_watch.decode(line)
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        return ("malformed", f"not a watch event: {e}")
    kind = ev.type
    try:
        obj = json.loads(bytes(ev.object))
    except ValueError as e:
        return ("malformed", f"not a watch event: {e}")
    if kind == "ERROR":
        code = obj.get("code") if isinstance(obj, dict) else None
        if code == 410:
            return ("GONE", str(obj.get("message", "")))
        return ("ERROR", json.dumps(obj)[:300])
    if kind == "BOOKMARK":
        rv = ((obj.get("metadata") if isinstance(obj, dict) else None) or {}).get("resourceVersion")
        return ("BOOKMARK", str(rv)) if rv else ("malformed", "bookmark without resourceVersion")
    if kind not in OBJECT_EVENTS:
        return ("unknown_type", f"watch event type {kind!r}")
    if isinstance(obj, dict) and obj.get("kind") not in (None, KINDS[dec.resource]):
        return ("unknown_kind", f"unexpected kind {obj.get('kind')!r} in a {dec.resource} stream")
    try:
        dec.object.decode(ev.object)
    except msgspec.ValidationError as e:
        return ("malformed", f"unreadable {dec.resource} object: {e}")
    return ("malformed", "unreadable object")  # the typed pass refused it for a reason seen here


class BadList(ValueError):
    """A list body that is not a list of this resource (the server is broken, not one object)."""


def list_page(resource: str, body: bytes) -> Page:
    """One page of a list: (resourceVersion, continue token, digests, drops by reason). Objects
    that cannot be read are counted (malformed, unknown_kind) and left out; BadList when the body
    itself is not a list."""
    dec = decoders(resource)
    bad: dict[str, int] = {}
    out: list[Digest] = []
    try:
        page: Any = dec.list.decode(body)
        items: list[Any] = page.items
        raw = False
    except (msgspec.ValidationError, msgspec.DecodeError):
        try:
            page = dec.raw_list.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            raise BadList(f"malformed list of {resource}: {e}") from e
        items, raw = page.items, True
    for item in items:
        try:
            out.append(of_struct(resource, dec.object.decode(item) if raw else item))
        except msgspec.ValidationError:
            bad["malformed"] = bad.get("malformed", 0) + 1
        except MalformedObject as e:
            reason = _drop_reason(e)
            bad[reason] = bad.get(reason, 0) + 1
    meta = page.metadata or s.ListMeta()
    return meta.resource_version or "", meta.cont or None, out, bad
