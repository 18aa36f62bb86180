"""Batching decisions: per-subject EventBatch accumulation by count, bytes and linger (pure; time passed in)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from itertools import accumulate, repeat
from operator import add, itemgetter

import attrs

from tapio_publisher.wire import (
    EVENT_ID_TAG,
    FRAME_OVERHEAD,
    FRAME_PREFIXES,
    frame_prefix,
    has_leading_id,
    id_field,
)

TRAILER_RESERVE = 64
"""Bytes kept free in every batch for the `batch_id` field."""

_TAGGED = FRAME_PREFIXES
_first = itemgetter(0)
_second = itemgetter(1)


@attrs.frozen
class SealedBatch:
    """A full (or expired) batch: its subject and the framed `EventBatch.events` fields, in order."""

    subject: str
    parts: list[bytes] = attrs.field(eq=False)
    count: int
    size: int


class _Open:
    __slots__ = ("count", "opened", "parts", "size")

    def __init__(self, opened: float) -> None:
        self.parts: list[bytes] = []
        self.count = 0
        self.size = 0
        self.opened = opened


@attrs.frozen
class Oversized:
    """An event refused for its size: its position in the call and its size in bytes."""

    index: int
    size: int


class Batcher:
    """Accumulates serialized events per subject and seals a batch when it reaches `max_events`, when
    the next event would take it over `max_bytes`, or when it is `linger` seconds old (`due`). The
    open batches together hold at most `max_open_bytes`; beyond that the oldest is sealed early.

    Events without a leading `id` field get one from `new_id` (prepended, see wire.id_field). The
    framing (tag, length) is `tapio_publisher.wire`'s, with the benchmark figure that justifies it.
    """

    def __init__(
        self,
        *,
        max_events: int,
        max_bytes: int,
        linger: float,
        new_id: Callable[[], str],
        max_open_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be >= 1, not {max_events}")
        if max_bytes <= TRAILER_RESERVE + FRAME_OVERHEAD:
            raise ValueError(f"max_bytes must be > {TRAILER_RESERVE + FRAME_OVERHEAD}, not {max_bytes}")
        self.max_events = max_events
        self.budget = max_bytes - TRAILER_RESERVE
        self.max_event_bytes = self.budget - FRAME_OVERHEAD
        self._fast_limit = min(self.max_event_bytes, len(_TAGGED) - 1)
        self._tagged = _TAGGED[: self._fast_limit + 1]
        self.linger = linger
        self.max_open_bytes = max_open_bytes
        self._new_id = new_id
        self._open: dict[str, _Open] = {}
        self._open_bytes = 0
        self.ids_assigned = 0

    @property
    def open_events(self) -> int:
        return sum(b.count for b in self._open.values())

    @property
    def open_bytes(self) -> int:
        return self._open_bytes

    def add_many(
        self, subject: str, datas: Sequence[bytes], now: float
    ) -> tuple[list[SealedBatch], list[Oversized]]:
        """Adds serialized events of one subject; returns the batches this sealed and the events
        refused as too large (the others are kept)."""
        n = len(datas)
        if n == 0:
            return [], []
        tagged = self._tagged
        try:  # IndexError: an event too short for an id, or larger than the fast path's table
            prefixes = [tagged[len(d)] for d in datas]
            if list(map(_first, datas)).count(EVENT_ID_TAG) != n or 0 in map(_second, datas):
                return self._add_checked(subject, datas, now)
        except IndexError:
            return self._add_checked(subject, datas, now)
        # Fast path (every event has its id and fits): framing and splitting run in C-level builtins.
        b = self._open.get(subject)
        if b is None:
            b = self._open[subject] = _Open(now)
        grown = sum(map(len, datas)) + FRAME_OVERHEAD * n
        if b.count + n < self.max_events and b.size + grown <= self.budget:  # all fit: no split
            chunk: list[bytes] = [b""] * (2 * n)
            chunk[::2] = prefixes
            chunk[1::2] = datas
            b.parts += chunk
            b.count += n
            b.size += grown
            self._open_bytes += grown
            if self._open_bytes > self.max_open_bytes:
                sealed: list[SealedBatch] = []
                self._cap_open(sealed)
                return sealed, []
            return [], []
        cum = list(accumulate(map(add, map(len, datas), repeat(FRAME_OVERHEAD))))
        sealed = []
        i = 0
        while i < n:
            base = cum[i - 1] if i else 0
            stop = min(n, i + self.max_events - b.count)
            k = bisect.bisect_right(cum, base + self.budget - b.size, i, stop) - i
            if k > 0:
                chunk = [b""] * (2 * k)
                chunk[::2] = prefixes[i : i + k]
                chunk[1::2] = datas[i : i + k]
                b.parts += chunk
                b.count += k
                grown = cum[i + k - 1] - base
                b.size += grown
                self._open_bytes += grown
                i += k
            if b.count >= self.max_events or k == 0:
                sealed.append(self._seal(subject, b))
                if i < n:
                    b = self._open[subject] = _Open(now)
        self._cap_open(sealed)
        return sealed, []

    def _add_checked(
        self, subject: str, datas: Sequence[bytes], now: float
    ) -> tuple[list[SealedBatch], list[Oversized]]:
        """The general path: assigns missing ids and refuses oversized events one by one."""
        sealed: list[SealedBatch] = []
        oversized: list[Oversized] = []
        good: list[bytes] = []
        for i, data in enumerate(datas):
            if not has_leading_id(data):  # no leading id: give it one
                data = id_field(self._new_id()) + data
                self.ids_assigned += 1
            if len(data) > self.max_event_bytes:
                oversized.append(Oversized(i, len(data)))
            else:
                good.append(data)
        if good:
            if max(map(len, good)) > self._fast_limit:
                for data in good:
                    sealed += self._add_one(subject, data, now)
                self._cap_open(sealed)
            else:
                sealed, _ = self.add_many(subject, good, now)
        return sealed, oversized

    def _add_one(self, subject: str, data: bytes, now: float) -> list[SealedBatch]:
        out: list[SealedBatch] = []
        cost = len(data) + FRAME_OVERHEAD
        b = self._open.get(subject)
        if b is not None and (b.count >= self.max_events or b.size + cost > self.budget):
            out.append(self._seal(subject, b))
            b = None
        if b is None:
            b = self._open[subject] = _Open(now)
        b.parts += (frame_prefix(len(data)), data)
        b.count += 1
        b.size += cost
        self._open_bytes += cost
        if b.count >= self.max_events:
            out.append(self._seal(subject, b))
        return out

    def _cap_open(self, sealed: list[SealedBatch]) -> None:
        while self._open_bytes > self.max_open_bytes and self._open:
            oldest = next(iter(self._open))
            sealed.append(self._seal(oldest, self._open[oldest]))

    def _seal(self, subject: str, b: _Open) -> SealedBatch:
        if self._open.get(subject) is b:
            del self._open[subject]
        self._open_bytes -= b.size
        return SealedBatch(subject, b.parts, b.count, b.size)

    def next_deadline(self) -> float | None:
        """When the oldest open batch expires (None: nothing open)."""
        for b in self._open.values():
            return b.opened + self.linger
        return None

    def due(self, now: float) -> list[SealedBatch]:
        """Seals and returns every batch open for `linger` seconds or longer."""
        out: list[SealedBatch] = []
        while self._open:
            subject, b = next(iter(self._open.items()))
            if b.opened + self.linger > now:
                break
            out.append(self._seal(subject, b))
        return out

    def seal_all(self) -> list[SealedBatch]:
        """Seals every open batch (flush, shutdown)."""
        return [self._seal(subject, b) for subject, b in list(self._open.items())]
