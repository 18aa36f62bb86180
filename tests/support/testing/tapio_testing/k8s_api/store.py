"""The test API server's object store: one resourceVersion counter, an event log for watches
(compacted on demand, so a resume from before the floor is `410 Gone`), consistent list snapshots
for `limit`/`continue`, and field selectors. Objects are stored pre-encoded (JSON bytes)."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import attrs

# resource plural -> (group/version path prefix, kind, namespaced)
RESOURCES: dict[str, tuple[str, str, bool]] = {
    "pods": ("/api/v1", "Pod", True),
    "nodes": ("/api/v1", "Node", False),
    "services": ("/api/v1", "Service", True),
    "events": ("/api/v1", "Event", True),
    "endpointslices": ("/apis/discovery.k8s.io/v1", "EndpointSlice", True),
    "deployments": ("/apis/apps/v1", "Deployment", True),
    "replicasets": ("/apis/apps/v1", "ReplicaSet", True),
    "jobs": ("/apis/batch/v1", "Job", True),
    "leases": ("/apis/coordination.k8s.io/v1", "Lease", True),
}
API_VERSIONS = {
    "/api/v1": "v1",
    "/apis/discovery.k8s.io/v1": "discovery.k8s.io/v1",
    "/apis/apps/v1": "apps/v1",
    "/apis/batch/v1": "batch/v1",
    "/apis/coordination.k8s.io/v1": "coordination.k8s.io/v1",
}


class ApiError(Exception):
    """An API error answered as a Status object."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> bytes:
        return json.dumps({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        }).encode()  # fmt: skip


@attrs.define
class Stored:
    rv: int
    obj: dict[str, Any]
    data: bytes  # the object's JSON


@attrs.define
class Change:
    rv: int
    resource: str
    type: str  # ADDED, MODIFIED, DELETED, or RAW (a line injected as is)
    namespace: str
    stored: Stored | None
    raw: bytes = b""


def matches(obj: dict[str, Any], selector: list[tuple[str, str, bool]]) -> bool:
    for path, value, equal in selector:
        cur: Any = obj
        for part in path.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if ((cur or "") == value) != equal:
            return False
    return True


def parse_selector(text: str) -> list[tuple[str, str, bool]]:
    out = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        if "!=" in term:
            path, value = term.split("!=", 1)
            out.append((path, value, False))
        elif "=" in term:
            path, value = term.replace("==", "=").split("=", 1)
            out.append((path, value, True))
        else:
            raise ApiError(400, "BadRequest", f"invalid field selector {term!r}")
    return out


class Store:
    """Thread-safe objects by (resource, namespace, name); every change gets the next rv."""

    def __init__(self, max_log: int = 200_000) -> None:
        self.max_log = max_log
        self.lock = threading.Condition()
        self.rv = 100
        self.floor = 100  # watches from an rv below this get 410 Gone
        self.objects: dict[str, dict[tuple[str, str], Stored]] = {r: {} for r in RESOURCES}
        self.log: list[Change] = []
        self.snapshots: dict[str, tuple[int, list[Stored]]] = {}
        self.closed = False

    def _next(self) -> int:
        if len(self.log) >= self.max_log:  # compaction, as etcd does: old resumes get 410
            cut = len(self.log) // 2
            self.floor = self.log[cut - 1].rv
            del self.log[:cut]
        self.rv += 1
        return self.rv

    def apply(self, obj: dict[str, Any], resource: str | None = None) -> dict[str, Any]:
        """Creates or replaces an object (uid and creationTimestamp kept or set); returns it."""
        resource = resource or plural_of(obj["kind"])
        meta = obj.setdefault("metadata", {})
        ns, name = meta.get("namespace", ""), meta["name"]
        with self.lock:
            old = self.objects[resource].get((ns, name))
            meta.setdefault("uid", old.obj["metadata"]["uid"] if old else str(uuid.uuid4()))
            meta.setdefault(
                "creationTimestamp",
                old.obj["metadata"]["creationTimestamp"]
                if old
                else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            )
            rv = self._next()
            meta["resourceVersion"] = str(rv)
            stored = Stored(rv, obj, json.dumps(obj, separators=(",", ":")).encode())
            self.objects[resource][(ns, name)] = stored
            self.log.append(Change(rv, resource, "MODIFIED" if old else "ADDED", ns, stored))
            self.lock.notify_all()
        return obj

    def load(self, resource: str, rows: Iterable[tuple[str, str, dict[str, Any], bytes]]) -> int:
        """Bulk load of objects that existed before any watch (benchmarks): (namespace, name,
        the fields selectors look at, the object's JSON with its resourceVersion). No log entries."""
        with self.lock:
            for ns, name, small, data in rows:
                self.objects[resource][(ns, name)] = Stored(self.rv, small, data)
            return self.rv

    def delete(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            old = self.objects[resource].pop((namespace, name), None)
            if old is None:
                raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
            rv = self._next()
            obj: dict[str, Any] = json.loads(old.data)
            obj["metadata"]["resourceVersion"] = str(rv)
            stored = Stored(rv, obj, json.dumps(obj, separators=(",", ":")).encode())
            self.log.append(Change(rv, resource, "DELETED", namespace, stored))
            self.lock.notify_all()
        return obj

    def inject(self, resource: str, line: bytes, namespace: str = "") -> None:
        """Puts `line` as is into the watch streams of `resource` (malformed or odd events)."""
        line = line if line.endswith(b"\n") else line + b"\n"
        with self.lock:
            rv = self._next()
            self.log.append(Change(rv, resource, "RAW", namespace, None, line))
            self.lock.notify_all()

    def compact(self) -> int:
        """Forgets the event log: a watch resuming from before now gets 410 Gone."""
        with self.lock:
            self.floor = self.rv
            self.log.clear()
            self.snapshots.clear()
            return self.floor

    def get(self, resource: str, namespace: str, name: str) -> Stored:
        with self.lock:
            found = self.objects[resource].get((namespace, name))
        if found is None:
            raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
        return found

    def list(
        self, resource: str, namespace: str, selector: list[tuple[str, str, bool]], limit: int, token: str
    ) -> tuple[int, list[Stored], str, int]:
        """(list rv, items of this page, continue token, remaining) from a consistent snapshot."""
        if token:
            try:
                state = json.loads(base64.b64decode(token))
                key, start = state["key"], state["start"]
            except (ValueError, KeyError) as e:
                raise ApiError(400, "BadRequest", "invalid continue token") from e
            with self.lock:
                snap = self.snapshots.get(key)
            if snap is None:
                raise ApiError(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result.",
                )
        else:
            with self.lock:
                items = [
                    s for (ns, _), s in sorted(self.objects[resource].items())
                    if (not namespace or ns == namespace) and (not selector or matches(s.obj, selector))
                ]  # fmt: skip
                snap = (self.rv, items)
                key, start = uuid.uuid4().hex, 0
                if limit and len(items) > limit:
                    self.snapshots[key] = snap
        rv, items = snap
        end = start + limit if limit else len(items)
        page = items[start:end]
        more = end < len(items)
        next_token = (
            base64.b64encode(json.dumps({"key": key, "start": end}).encode()).decode() if more else ""
        )
        if not more:
            with self.lock:
                self.snapshots.pop(key, None)
        return rv, page, next_token, max(0, len(items) - end)

    def changes(self, after: int) -> Iterator[Change]:
        """Changes with rv > after (caller holds the lock). 410 when `after` is below the floor."""
        if after < self.floor:
            raise ApiError(410, "Expired", f"too old resource version: {after} ({self.floor})")
        lo, hi = 0, len(self.log)
        while lo < hi:  # the log is in rv order
            mid = (lo + hi) // 2
            if self.log[mid].rv <= after:
                lo = mid + 1
            else:
                hi = mid
        yield from self.log[lo:]


def plural_of(kind: str) -> str:
    for plural, (_, k, _) in RESOURCES.items():
        if k == kind:
            return plural
    raise ApiError(400, "BadRequest", f"unknown kind {kind}")
