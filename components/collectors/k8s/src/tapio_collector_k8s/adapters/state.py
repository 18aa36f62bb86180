"""Persisted watch state under the data dir: per resource the last resourceVersion and the digest
of every object seen, so a restarted collector resumes its watches where it stopped and, after a
410, emits only what changed while it was away (updates, and `deleted` for what vanished).

Two parts, both msgpack, both written only once the publisher confirmed every event derived so far:
- snapshots `<resource>.state` (written atomically: temp file, fsync, rename; a torn or foreign
  file is ignored), each naming the journal generation it starts from;
- the journal `journal.<generation>`: marks appended every `mark_interval`, each the
  resourceVersion of a resource and the digests of the objects that changed since the last mark
  (None for a deletion). A snapshot of everything starts a new generation; older journals are
  removed once every snapshot names the new one. A torn last mark (a crash while writing) is
  ignored: at most that mark's events are derived and emitted again.
- the notes `pending.<generation>`: the digest of every object emitted as `created`, appended
  BEFORE it is emitted (domain.recovery), not fsync'd each (a killed process loses nothing written;
  the next mark fsyncs them). An object noted, unknown to the saved state and named by no mark is
  one the last run may have published but never saved: the restarted collector derives from the
  noted digest when it sees the object again. Notes go with their generation's journal.
Loading applies a resource's journal marks, in order, on top of its snapshot."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgpack

from tapio_collector_k8s.domain.digest import Digest, from_row
from tapio_common.logging import get_logger

log = get_logger(__name__)
FORMAT = 1
_JOURNAL = re.compile(r"^journal\.(\d+)$")
_NOTES = re.compile(r"^pending\.(\d+)$")
_SAVE_SLICE = 4096  # objects packed between two writes of a snapshot

Mark = tuple[str, str, Sequence[tuple[str, Digest | None]]]  # resource, rv, changed objects
Loaded = tuple[str, dict[str, Digest]]  # rv, digests by uid


class StateStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.generation = 0  # the journal marks are appended to (set by load_all, moved by rotate)
        self.journal_bytes = 0  # size of the current journal and notes (the source snapshots when it grows)
        self.pending: dict[str, dict[str, Digest]] = {}  # by load_all: noted, never saved (by resource)
        self._unsynced: set[Path] = set()  # notes written since the last fsync
        self._notes_lock = threading.Lock()  # notes are appended from worker threads

    def _path(self, resource: str) -> Path:
        return self.directory / f"{resource}.state"

    def _journals(self, pattern: re.Pattern[str] = _JOURNAL) -> list[tuple[int, Path]]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        found = [(int(m.group(1)), self.directory / n) for n in names if (m := pattern.match(n))]
        return sorted(found)

    # -- loading --------------------------------------------------------------------------------------

    def load(self, resource: str) -> Loaded | None:
        """(resourceVersion, digests by uid), or None when nothing (usable) was saved."""
        return self.load_all((resource,)).get(resource)

    def load_all(self, resources: Iterable[str]) -> dict[str, Loaded]:
        """Snapshot plus journal of every resource that has a usable one; later marks are appended
        to a journal generation newer than every one found."""
        loaded: dict[str, tuple[int, str, dict[str, Digest]]] = {}
        for resource in resources:
            snap = self.load_snapshot(resource)
            if snap is not None:
                loaded[resource] = snap
        journals = self._journals()
        marked: dict[str, set[str]] = {}  # uids named by any mark still on disk, by resource
        for gen, path in journals:
            for resource, rv, changed in self._read_journal(path):
                marked.setdefault(resource, set()).update(uid for uid, _ in changed)
                # No snapshot: every mark still on disk counts (a snapshot of everything saves each
                # resource with marks before the journals holding them are removed).
                entry = loaded.setdefault(resource, (0, "", {}))
                if gen < entry[0]:
                    continue
                known = entry[2]
                for uid, row in changed:
                    if row is None:
                        known.pop(uid, None)
                    else:
                        known[uid] = from_row(resource, row)
                loaded[resource] = (entry[0], rv, known)
        notes = self._journals(_NOTES)
        self.pending = {}
        for _, path in notes:
            for resource, noted in self._read_notes(path):
                done = marked.get(resource, set())
                known = loaded.get(resource, (0, "", {}))[2]
                for uid, row in noted:
                    if uid not in done and uid not in known:
                        self.pending.setdefault(resource, {})[uid] = from_row(resource, row)
        # New marks go to a new generation (never after a torn tail); the journals read stay until
        # the next snapshot of everything, and are read again if the collector stops before.
        self.generation = max((g for g, _ in journals + notes), default=0) + 1
        self.journal_bytes = 0
        return {r: (rv, known) for r, (_, rv, known) in loaded.items()}

    def load_snapshot(self, resource: str) -> tuple[int, str, dict[str, Digest]] | None:
        """(journal generation, resourceVersion, digests) of the snapshot alone, or None."""
        path = self._path(resource)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            doc: Any = msgpack.unpackb(raw, use_list=True, strict_map_key=False)
            if doc.get("format") != FORMAT or doc.get("resource") != resource:
                raise ValueError("foreign format")
            known = {uid: from_row(resource, row) for uid, row in doc["objects"].items()}
            return int(doc.get("journal", 0)), str(doc["rv"]), known
        except (ValueError, TypeError, KeyError, AttributeError, msgpack.UnpackException) as e:
            log.warning("ignoring unreadable watch state (relisting)", path=str(path), error=str(e))
            return None

    def _read_journal(self, path: Path) -> list[tuple[str, str, list[tuple[str, Any]]]]:
        return [(str(r), str(rv), changed) for r, rv, changed in self._records(path, 3)]

    def _read_notes(self, path: Path) -> list[tuple[str, list[tuple[str, Any]]]]:
        return [(str(r), noted) for r, noted in self._records(path, 2)]

    def _records(self, path: Path, fields: int) -> list[list[Any]]:
        """The records of a journal ([resource, rv, changed]) or of notes ([resource, noted]),
        their last field as (uid, row) pairs, up to a torn tail."""
        out: list[list[Any]] = []
        unpacker = msgpack.Unpacker(use_list=True, strict_map_key=False)
        try:
            unpacker.feed(path.read_bytes())
        except FileNotFoundError:
            return out
        try:
            for record in unpacker:
                if not isinstance(record, list) or len(record) != fields:
                    raise ValueError(f"not a record of {fields} fields")
                record[-1] = [(str(uid), row) for uid, row in record[-1]]
                out.append(record)
        except (ValueError, TypeError, msgpack.UnpackException) as e:
            log.warning("watch state journal ends with a torn mark (ignored)", path=str(path), error=str(e))
        return out

    # -- writing --------------------------------------------------------------------------------------

    def append(self, marks: Sequence[Mark]) -> None:
        """Appends marks to the current journal generation (fsync'd: they are what stops re-emits)."""
        if not marks:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        pack = msgpack.Packer(use_bin_type=True).pack
        data = b"".join(
            pack([resource, rv, [[uid, d] for uid, d in changed]]) for resource, rv, changed in marks
        )
        with open(self.directory / f"journal.{self.generation}", "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.journal_bytes += len(data)
        self.sync_notes()

    def note(self, resource: str, noted: Sequence[tuple[str, Digest]], *, sync: bool = False) -> None:
        """Appends the digests of objects about to be emitted as `created` to the current
        generation's notes; fsync'd at the next mark (or now, `sync`)."""
        if not noted:
            return
        data = msgpack.packb([resource, [[uid, d] for uid, d in noted]], use_bin_type=True)
        with self._notes_lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"pending.{self.generation}"
            with open(path, "ab") as f:
                f.write(data)
                if sync:
                    f.flush()
                    os.fsync(f.fileno())
                else:
                    self._unsynced.add(path)
            self.journal_bytes += len(data)

    def sync_notes(self) -> None:
        """fsyncs the notes written since the last time (a machine crash could lose them)."""
        with self._notes_lock:
            paths, self._unsynced = self._unsynced, set()
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def rotate(self) -> int:
        """Starts a new journal generation (before a snapshot of everything): returns it."""
        self.generation += 1
        self.journal_bytes = 0
        return self.generation

    def drop_journals_before(self, generation: int) -> None:
        """Every snapshot names `generation` or a later one: older journals are not needed."""
        for gen, path in self._journals() + self._journals(_NOTES):
            if gen < generation:
                path.unlink(missing_ok=True)

    def save(self, resource: str, rv: str, known: Mapping[str, Digest], generation: int = 0) -> None:
        """The snapshot of `resource`; its journal marks start at `generation`."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(resource)
        tmp = path.with_suffix(".tmp")
        # Streamed in slices of _SAVE_SLICE objects (no second copy of the state in memory), each
        # packed into the packer's own buffer: no bytes object and no write per object.
        packer = msgpack.Packer(use_bin_type=True, autoreset=False)
        pack = packer.pack
        with open(tmp, "wb", buffering=1 << 20) as f:
            packer.pack_map_header(5)
            for key, value in (
                ("format", FORMAT),
                ("resource", resource),
                ("rv", rv),
                ("journal", generation),
            ):
                pack(key)
                pack(value)
            pack("objects")
            packer.pack_map_header(len(known))
            for n, (uid, d) in enumerate(known.items(), 1):
                pack(uid)
                pack(d)
                if n % _SAVE_SLICE == 0:
                    f.write(packer.bytes())
                    packer.reset()
            f.write(packer.bytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
