"""Durable local spool: append-only segment files of CRC-framed records, replayed in order after an outage."""

from __future__ import annotations

import bisect
import enum
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from tapio_common.logging import get_logger
from tapio_publisher.errors import SpoolError
from tapio_publisher.spool_format import SpoolRecord, decode_record, encode_record, scan

log = get_logger(__name__)

SEGMENT_SUFFIX = ".seg"
CURSOR_FILE = "cursor"
_MAX = 1 << 62


class FsyncPolicy(enum.Enum):
    ALWAYS = "always"  # fsync after every append (a machine crash loses nothing acknowledged to the caller)
    INTERVAL = "interval"  # fsync at most every `fsync_interval` seconds
    NEVER = "never"  # leave it to the OS (a process crash loses nothing, a machine crash may)

    @classmethod
    def parse(cls, value: str) -> FsyncPolicy:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise ValueError(f"unknown fsync policy {value!r} (expected always|interval|never)") from None


@attrs.frozen(order=True)
class Position:
    """A place in the spool: segment number and byte offset (the end of a record)."""

    segment: int
    offset: int


@attrs.frozen
class Recovery:
    """What `open()` found: pending records/events, and torn or corrupt records it skipped."""

    records: int
    events: int
    torn_records: int


class _Segment:
    __slots__ = ("ends", "index", "path", "size")

    def __init__(self, index: int, path: Path) -> None:
        self.index = index
        self.path = path
        self.size = 0
        self.ends: list[tuple[int, int]] = []  # (end offset, events) of every record, in order


DropCallback = Callable[[str, int], None]


class Spool:
    """Segment files `NNNNNNNNNNNN.seg` under `directory` plus a `cursor` file (the committed position).

    Not async: call it from one worker thread at a time (the publisher uses anyio.to_thread with a
    limiter of one); an internal lock makes misuse safe. `on_drop(reason, events)` is called for
    every event lost: `spool_full` (evicted oldest-first above `max_bytes`), `spool_torn` (a record
    cut by a crash or corrupt on disk; a torn header counts as one event).
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        max_bytes: int = 1 << 30,
        segment_bytes: int = 64 << 20,
        fsync: FsyncPolicy = FsyncPolicy.INTERVAL,
        fsync_interval: float = 1.0,
        on_drop: DropCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if segment_bytes * 2 > max_bytes:
            raise ValueError(
                f"spool max_bytes ({max_bytes}) must be at least twice segment_bytes ({segment_bytes})"
            )
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.fsync_interval = fsync_interval
        self._on_drop = on_drop or (lambda reason, n: None)
        self._clock = clock
        self._lock = threading.Lock()
        self._segments: dict[int, _Segment] = {}
        self._fd: int | None = None
        self._committed = Position(1, 0)
        self._read = Position(1, 0)
        self._last_sync = clock()
        self._dirty = False
        self.pending_records = 0
        self.pending_events = 0

    # -- opening and recovery -------------------------------------------------------------------

    def open(self) -> Recovery:
        """Creates the directory or recovers what a previous process left (truncating torn tails)."""
        with self._lock:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                return self._recover()
            except OSError as e:
                raise SpoolError(f"cannot open spool {self.directory}: {e.strerror or e}") from e

    def _recover(self) -> Recovery:
        self._committed = self._read_cursor()
        torn = 0
        for path in sorted(self.directory.glob("*" + SEGMENT_SUFFIX)):
            try:
                index = int(path.stem)
            except ValueError:
                continue
            if index < self._committed.segment:
                path.unlink()  # fully replayed before; its deletion was interrupted
                continue
            seg = _Segment(index, path)
            data = path.read_bytes()
            ends, good, bad = scan(data)
            seg.ends, seg.size = ends, good
            if good < len(data):
                torn += bad
                self._on_drop("spool_torn", bad)
                log.warning(
                    "spool: dropped a torn or corrupt tail", segment=str(path), bytes=len(data) - good
                )
                with open(path, "r+b") as f:
                    f.truncate(good)
            self._segments[index] = seg
        if not self._segments:
            self._segments[self._committed.segment] = _Segment(
                self._committed.segment, self._path(self._committed.segment)
            )
        first = min(self._segments)
        if self._committed.segment < first:
            self._committed = Position(first, 0)
        self._read = self._committed
        self.pending_records = self.pending_events = 0
        for seg in self._segments.values():
            for end, events in seg.ends:
                if Position(seg.index, end) > self._committed:
                    self.pending_records += 1
                    self.pending_events += events
        last = self._segments[max(self._segments)]
        self._fd = os.open(last.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return Recovery(self.pending_records, self.pending_events, torn)

    def _read_cursor(self) -> Position:
        try:
            seg, off = (self.directory / CURSOR_FILE).read_text().split()
            return Position(int(seg), int(off))
        except FileNotFoundError:
            return Position(1, 0)
        except ValueError:
            log.warning("spool: unreadable cursor file, replaying everything", dir=str(self.directory))
            return Position(1, 0)

    def _path(self, index: int) -> Path:
        return self.directory / f"{index:012d}{SEGMENT_SUFFIX}"

    # -- writing ----------------------------------------------------------------------------------

    @property
    def total_bytes(self) -> int:
        return sum(s.size for s in self._segments.values())

    @property
    def empty(self) -> bool:
        """Nothing left to replay (every record committed)."""
        return self.pending_records == 0

    def append(self, records: Sequence[SpoolRecord]) -> None:
        """Appends records in order (one write per segment touched), syncs per policy, then evicts
        the oldest segments while the spool is above `max_bytes`."""
        with self._lock:
            if self._fd is None:
                raise SpoolError(f"spool {self.directory} is not open")
            try:
                self._append(records)
                self._maybe_sync(force=self.fsync is FsyncPolicy.ALWAYS)
                self._evict()
            except OSError as e:
                raise SpoolError(f"cannot write spool {self.directory}: {e.strerror or e}") from e

    def _append(self, records: Sequence[SpoolRecord]) -> None:
        seg = self._segments[max(self._segments)]
        chunk: list[bytes] = []
        for rec in records:
            frame = encode_record(rec)
            if seg.size > 0 and seg.size + len(frame) > self.segment_bytes:
                self._write(chunk)
                chunk = []
                seg = self._roll(seg)
            chunk.append(frame)
            seg.size += len(frame)
            seg.ends.append((seg.size, rec.events))
            self.pending_records += 1
            self.pending_events += rec.events
        self._write(chunk)

    def _write(self, chunk: list[bytes]) -> None:
        if chunk:
            assert self._fd is not None
            os.write(self._fd, b"".join(chunk))
            self._dirty = True

    def _roll(self, seg: _Segment) -> _Segment:
        assert self._fd is not None
        if self.fsync is not FsyncPolicy.NEVER:
            os.fsync(self._fd)
        os.close(self._fd)
        new = _Segment(seg.index + 1, self._path(seg.index + 1))
        self._segments[new.index] = new
        self._fd = os.open(new.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self.fsync is not FsyncPolicy.NEVER:
            _fsync_dir(self.directory)
        return new

    def _maybe_sync(self, force: bool = False) -> None:
        now = self._clock()
        due = self.fsync is FsyncPolicy.INTERVAL and now - self._last_sync >= self.fsync_interval
        if self._dirty and self._fd is not None and (force or due):
            os.fsync(self._fd)
            self._dirty = False
            self._last_sync = now

    def sync(self) -> None:
        """fsync pending writes now unless the policy is `never` (called on idle and at close)."""
        with self._lock:
            if self.fsync is not FsyncPolicy.NEVER:
                self._maybe_sync(force=True)

    def _evict(self) -> None:
        while self.total_bytes > self.max_bytes and len(self._segments) > 1:
            oldest = self._segments.pop(min(self._segments))
            lost = lost_events = 0
            for end, events in oldest.ends:
                if Position(oldest.index, end) > self._committed:
                    lost += 1
                    lost_events += events
            self.pending_records -= lost
            self.pending_events -= lost_events
            oldest.path.unlink(missing_ok=True)
            nxt = Position(min(self._segments), 0)
            self._committed = max(self._committed, nxt)
            self._read = max(self._read, nxt)
            if lost_events:
                self._on_drop("spool_full", lost_events)
                log.warning(
                    "spool full: evicted the oldest segment", segment=str(oldest.path), events=lost_events
                )

    # -- replay -----------------------------------------------------------------------------------

    def read(self, max_records: int, max_bytes: int = 32 << 20) -> list[tuple[Position, SpoolRecord]]:
        """The next records after the read position (advancing it), oldest first."""
        with self._lock:
            out: list[tuple[Position, SpoolRecord]] = []
            size = 0
            try:
                for index in sorted(self._segments):
                    if index < self._read.segment or len(out) >= max_records:
                        continue
                    seg = self._segments[index]
                    start = self._read.offset if index == self._read.segment else 0
                    first = bisect.bisect_right(seg.ends, (start, _MAX))
                    take: list[int] = []
                    prev = start
                    for end, _ in seg.ends[first:]:
                        if len(out) + len(take) >= max_records or (size and size + end - prev > max_bytes):
                            break
                        take.append(end)
                        size += end - prev
                        prev = end
                    if not take:
                        continue
                    with open(seg.path, "rb") as f:
                        f.seek(start)
                        span = memoryview(f.read(take[-1] - start))
                    prev = start
                    for end in take:
                        out.append((Position(index, end), decode_record(span[prev - start : end - start])))
                        prev = end
                    self._read = Position(index, take[-1])
                    if len(take) < len(seg.ends) - first:
                        break
            except OSError as e:
                raise SpoolError(f"cannot read spool {self.directory}: {e.strerror or e}") from e
            return out

    def rewind(self) -> None:
        """Read again from the committed position (a replay attempt failed)."""
        with self._lock:
            self._read = self._committed

    def commit(self, pos: Position) -> None:
        """Everything up to `pos` is confirmed published: advance, delete finished segments, persist."""
        with self._lock:
            if pos <= self._committed:
                return
            for index in sorted(self._segments):
                if index < self._committed.segment or index > pos.segment:
                    continue
                seg = self._segments[index]
                lo = self._committed.offset if index == self._committed.segment else 0
                hi = pos.offset if index == pos.segment else seg.size
                i = bisect.bisect_right(seg.ends, (lo, _MAX))
                j = bisect.bisect_right(seg.ends, (hi, _MAX))
                self.pending_records -= j - i
                self.pending_events -= sum(ev for _, ev in seg.ends[i:j])
            self._committed = pos
            self._read = max(self._read, pos)
            try:
                last = max(self._segments)
                for index in sorted(self._segments):
                    seg = self._segments[index]
                    done = index < pos.segment or (index == pos.segment and pos.offset >= seg.size)
                    if index == last or not done:
                        break
                    del self._segments[index]
                    seg.path.unlink(missing_ok=True)
                self._write_cursor()
            except OSError as e:
                raise SpoolError(f"cannot update spool cursor in {self.directory}: {e.strerror or e}") from e

    def _write_cursor(self) -> None:
        tmp = self.directory / (CURSOR_FILE + ".tmp")
        with open(tmp, "w") as f:
            f.write(f"{self._committed.segment} {self._committed.offset}\n")
            if self.fsync is FsyncPolicy.ALWAYS:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.directory / CURSOR_FILE)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                if self.fsync is not FsyncPolicy.NEVER and self._dirty:
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["FsyncPolicy", "Position", "Recovery", "Spool", "SpoolRecord"]
