"""Persisted watch state under the data dir: per resource the last resourceVersion and the digest
of every object seen, so a restarted collector resumes its watches where it stopped and, after a
410, emits only what changed while it was away (updates, and `deleted` for what vanished).
msgpack files written atomically (temp file, fsync, rename); a torn or foreign file is ignored."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgpack

from tapio_collector_k8s.domain.digest import Digest, from_row
from tapio_common.logging import get_logger

log = get_logger(__name__)
FORMAT = 1


class StateStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, resource: str) -> Path:
        return self.directory / f"{resource}.state"

    def load(self, resource: str) -> tuple[str, dict[str, Digest]] | None:
        """(resourceVersion, digests by uid), or None when nothing (usable) was saved."""
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
            rv = str(doc["rv"])
        except (ValueError, TypeError, KeyError, AttributeError, msgpack.UnpackException) as e:
            log.warning("ignoring unreadable watch state (relisting)", path=str(path), error=str(e))
            return None
        return rv, known

    def save(self, resource: str, rv: str, known: Mapping[str, Digest]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(resource)
        tmp = path.with_suffix(".tmp")
        packer = msgpack.Packer(use_bin_type=True)
        pack = packer.pack
        with open(tmp, "wb", buffering=1 << 20) as f:  # streamed: no second copy of the state in memory
            f.write(packer.pack_map_header(4))
            for key, value in (("format", FORMAT), ("resource", resource), ("rv", rv)):
                f.write(pack(key) + pack(value))
            f.write(pack("objects") + packer.pack_map_header(len(known)))
            for uid, d in known.items():
                f.write(pack(uid) + pack(d))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
