"""List+watch of one resource (a reflector, as client-go calls it): paged relist from a consistent
snapshot, watch from the last resourceVersion with bookmarks, relist on 410 Gone, backoff while the
API server is unreachable. Decoding (domain.decode: typed msgspec, only the fields the collector
reads) and digesting run in reader threads; the event loop gets
batches of (old, new) digest pairs and hands them to `on_changes`. An object the last run emitted
as `created` and never saved (`pending`, domain.recovery) is derived from what it emitted when it
is listed or watched again. Malformed, unknown and oversized objects are counted and skipped."""

from __future__ import annotations

import contextlib
import queue
import random
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import urllib3
from anyio.streams.memory import MemoryObjectSendStream

from tapio_collector_k8s.adapters.client import Api
from tapio_collector_k8s.adapters.health import ApiHealth
from tapio_collector_k8s.domain import decode
from tapio_collector_k8s.domain.decode import Page
from tapio_collector_k8s.domain.digest import Digest
from tapio_collector_k8s.domain.recovery import noted_pairs
from tapio_collector_k8s.errors import ApiUnavailableError, GoneError
from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics

log = get_logger(__name__)

Pair = tuple[Digest | None, Digest | None]
OnChanges = Callable[[str, list[Pair]], Awaitable[None]]
_END = ("END", None)


class Reflector:
    """Keeps `known` (digests by uid) and `rv` in step with the API server for `resource`."""

    def __init__(
        self,
        resource: str,
        api: Api,
        on_changes: OnChanges,
        health: ApiHealth,
        metrics: ComponentMetrics,
        gate: anyio.Lock,
        *,
        field_selector: str | None = None,
        page_size: int = 500,
        watch_timeout: int = 300,
        max_object_bytes: int = 1024 * 1024,
        on_synced: Callable[[], None] = lambda: None,
    ) -> None:
        self.on_synced = on_synced
        self.resource = resource
        self.api = api
        self.on_changes = on_changes
        self.health = health
        self.metrics = metrics
        self.gate = gate
        self.field_selector = field_selector
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.max_object_bytes = max_object_bytes
        self.rv: str | None = None  # None: relist needed
        self.known: dict[str, Digest] = {}
        # uid -> the digest the last run emitted as `created` and never saved (adapters.state notes)
        self.pending: dict[str, Digest] = {}
        self.recovered = 0  # pending objects derived from their noted digest
        self.fresh: set[str] = set()  # uids emitted as created and not marked since (source.py notes them)
        self.dirty: set[str] = set()  # uids changed since the last journal mark (source.py)
        self.synced = False  # a list or watch succeeded since start
        self.changes = 0  # state changes (rv or objects): the checkpoint saves only what moved
        self.relists = 0
        self.watch_restarts = 0

    def _synced(self) -> None:
        if not self.synced:
            self.synced = True
            self.on_synced()

    def restore(self, rv: str, known: dict[str, Digest]) -> None:
        self.rv, self.known = (rv or None), known

    async def run(self) -> None:
        delay = self.health.backoff_initial
        while True:
            try:
                if self.rv is None:
                    await self.relist()
                await self.watch_once()
                delay = self.health.backoff_initial
            except GoneError as e:
                log.info("resourceVersion too old: relisting", resource=self.resource, detail=str(e))
                self.rv = None
            except ApiUnavailableError as e:
                self.health.failed(self.resource, str(e))
                self.metrics.error("api_unavailable")
                await anyio.sleep(delay * (0.5 + random.random() / 2))
                delay = min(delay * 2, self.health.backoff_max)

    # -- list -----------------------------------------------------------------------------------------

    async def relist(self) -> None:
        """Lists everything (paged); emits what changed against `known`, `deleted` for what vanished."""
        self.rv = None
        self.relists += 1
        seen: set[str] = set()
        list_rv = ""
        # One page is fetched (and parsed, in a worker thread) while the previous one is processed.
        send, recv = anyio.create_memory_object_stream[Page | ApiUnavailableError | None](1)
        failure: ApiUnavailableError | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._pages, send)
            async with recv:
                async for page in recv:
                    if page is None:  # the continue token expired mid-list: it starts over
                        seen.clear()
                        continue
                    if isinstance(page, ApiUnavailableError):
                        failure = page  # the fetcher has ended; raised outside the task group
                        break
                    self.health.ok(self.resource)
                    list_rv, _, digests, bad = page
                    for reason, n in bad.items():
                        self.metrics.drop(reason, n)
                    pairs: list[Pair] = []
                    for d in digests:
                        seen.add(d.uid)
                        old = self.known.get(d.uid)
                        if old is None and self.pending and d.uid in self.pending:
                            pairs += self._noted(d.uid, d)
                        elif old is None or old[1:] != d[1:]:
                            pairs.append((old, d))
                        if old != d:
                            self.dirty.add(d.uid)
                        self.known[d.uid] = d
                    if pairs:
                        async with self.gate:
                            await self.on_changes(self.resource, pairs)
        if failure is not None:
            raise failure
        gone = [d for uid, d in self.known.items() if uid not in seen]
        for d in gone:
            del self.known[d.uid]
            self.dirty.add(d.uid)
        vanished: list[Pair] = [(d, None) for d in gone]
        for uid in [uid for uid in self.pending if uid not in seen]:
            vanished += self._noted(uid, None)  # created and deleted while nothing was saved
            self.dirty.add(uid)  # a mark names it: the note is spent
        if vanished:
            async with self.gate:
                await self.on_changes(self.resource, vanished)
        self.rv = list_rv
        self.changes += 1
        self._synced()
        log.info(
            "listed",
            resource=self.resource,
            objects=len(self.known),
            deleted_while_away=len(gone),
            recovered=self.recovered,
            rv=list_rv,
        )

    def _noted(self, uid: str, now: Digest | None) -> list[Pair]:
        """The pairs of a pending object seen again (`now`; None: gone), from its noted digest."""
        self.recovered += 1
        return noted_pairs(self.pending.pop(uid), now)

    async def _pages(self, send: MemoryObjectSendStream[Page | ApiUnavailableError | None]) -> None:
        async with send:
            cont: str | None = None
            while True:
                try:
                    page = await anyio.to_thread.run_sync(self._fetch_page, cont)
                except GoneError:
                    await send.send(None)
                    cont = None
                    continue
                except ApiUnavailableError as e:
                    await send.send(e)
                    return
                await send.send(page)
                cont = page[1]
                if not cont:
                    return

    def _fetch_page(self, cont: str | None) -> Page:
        body = self.api.list_page(
            self.resource, field_selector=self.field_selector, limit=self.page_size, cont=cont
        )
        try:
            page = decode.list_page(self.resource, body)
        except decode.BadList as e:
            raise ApiUnavailableError(f"{e} from {self.api.host}") from e
        for reason, n in page[3].items():
            log.warning(
                "unreadable objects skipped in a list", resource=self.resource, reason=reason, count=n
            )
        return page

    # -- watch ----------------------------------------------------------------------------------------

    async def watch_once(self) -> None:
        """One watch request from `rv` until the server ends it; GoneError on 410."""
        assert self.rv is not None
        resp = await anyio.to_thread.run_sync(self._open_watch, self.rv)
        self.health.ok(self.resource)
        self._synced()
        q: queue.Queue[list[tuple[str, Any]]] = queue.Queue(maxsize=64)
        stop = threading.Event()
        reader = threading.Thread(
            target=self._read, args=(resp, q, stop), name=f"watch-{self.resource}", daemon=True
        )
        reader.start()
        try:
            while True:
                batch = await anyio.to_thread.run_sync(_take, q, abandon_on_cancel=True)
                if batch and not await self._apply(batch):
                    return
        finally:
            stop.set()
            _close(resp)

    def _open_watch(self, rv: str) -> urllib3.HTTPResponse:
        return self.api.watch(
            self.resource, rv=rv, field_selector=self.field_selector, timeout_seconds=self.watch_timeout
        )

    async def _apply(self, batch: list[tuple[str, Any]]) -> bool:
        """Applies watch events in order; False when the stream ended. GoneError on a 410 event."""
        pairs: list[Pair] = []
        more, gone = True, ""
        for kind, value in batch:
            if kind in ("ADDED", "MODIFIED"):
                old = self.known.get(value.uid)
                self.known[value.uid] = value
                if old is None and self.pending and value.uid in self.pending:
                    pairs += self._noted(value.uid, value)
                elif old is None or old[1:] != value[1:]:
                    pairs.append((old, value))
                self.dirty.add(value.uid)
                self.rv = value.rv
            elif kind == "DELETED":
                old = self.known.pop(value.uid, None)
                if old is None and self.pending and value.uid in self.pending:
                    pairs += self._noted(value.uid, None)
                else:
                    pairs.append((old or value, None))
                self.dirty.add(value.uid)
                self.rv = value.rv
            elif kind == "BOOKMARK":
                self.rv = value
                self.changes += 1
            elif kind == "GONE":
                gone, more = value or "410 Gone", False
                break
            elif kind == "ERROR":
                self.metrics.error("watch_error")
                log.warning("watch error event", resource=self.resource, status=value)
                more = False
                break
            elif kind == "END":
                self.watch_restarts += 1
                if value:
                    log.info("watch stream broken, resuming", resource=self.resource, rv=self.rv, error=value)
                more = False
                break
            else:  # a drop reason: malformed, unknown_type, unknown_kind, oversized
                self.metrics.drop(kind)
                log.warning("watch event skipped", resource=self.resource, reason=kind, detail=value)
        if pairs:
            self.changes += 1
            async with self.gate:
                await self.on_changes(self.resource, pairs)
        if gone:
            raise GoneError(gone)
        return more

    def _read(
        self, resp: urllib3.HTTPResponse, q: queue.Queue[list[tuple[str, Any]]], stop: threading.Event
    ) -> None:
        """Reader thread: splits the chunked stream into lines, parses and digests them. Ends with
        the stream, or soon after `stop` is set (the loop then shuts the response down)."""

        def put(items: list[tuple[str, Any]]) -> None:
            while not stop.is_set():
                try:
                    q.put(items, timeout=0.5)
                    return
                except queue.Full:
                    continue

        pending = b""
        limit = self.max_object_bytes
        try:
            for chunk in resp.stream(256 * 1024, decode_content=True):
                pending += chunk
                if b"\n" not in chunk:
                    if len(pending) > self.max_object_bytes * 2:
                        put([("oversized", f"{len(pending)} bytes without a line end")])
                        pending = b""
                    continue
                *complete, pending = pending.split(b"\n")
                items = [decode.watch_line(self.resource, line, limit) for line in complete if line.strip()]
                if items:
                    put(items)
            put([_END])
        except (urllib3.exceptions.HTTPError, OSError, ValueError, AttributeError) as e:
            # AttributeError: urllib3 reading a response the loop has just shut down
            put([("END", "" if stop.is_set() else (str(e) or type(e).__name__))])


def _take(q: queue.Queue[list[tuple[str, Any]]]) -> list[tuple[str, Any]]:
    """Worker thread: waits up to 0.5 s for a batch, then takes whatever else is queued."""
    try:
        out = q.get(timeout=0.5)
    except queue.Empty:
        return []
    while len(out) < 4096:
        try:
            out += q.get_nowait()
        except queue.Empty:
            break
    return out


def _close(resp: urllib3.HTTPResponse) -> None:
    """Ends a watch response, waking its reader thread if it is blocked on the socket."""
    with contextlib.suppress(ValueError, RuntimeError, OSError):  # already ended, or its connection is gone
        resp.shutdown()
    resp.release_conn()
