"""Last published state per unit on disk (`<state dir>/units.json`, replaced atomically), read at
start and written by the source after it emitted transitions."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import anyio

from tapio_collector_systemd.domain import snapshot
from tapio_collector_systemd.domain.units import UnitState
from tapio_collector_systemd.errors import SnapshotError, SystemdCollectorError
from tapio_common.logging import get_logger

log = get_logger(__name__)
FILE_NAME = "units.json"


class StateStore:
    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE_NAME

    def load(self) -> dict[str, UnitState]:
        """The states published before; none when the file does not exist. A corrupt file is
        logged and set aside (`units.json.corrupt`): every unit then publishes its initial state."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as e:
            raise SystemdCollectorError(f"cannot read the state file {self.path}: {e.strerror}") from e
        try:
            return snapshot.loads(text, str(self.path))
        except SnapshotError as e:
            aside = self.path.with_name(FILE_NAME + ".corrupt")
            os.replace(self.path, aside)
            log.error(
                "state file unreadable, set aside: publishing every unit's state again",
                error=str(e),
                moved_to=str(aside),
            )
            return {}

    def _write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(FILE_NAME + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    async def save(self, published: Mapping[str, UnitState]) -> None:
        """Writes the states (fsync, then rename) in a worker thread."""
        text = snapshot.dumps(published)
        try:
            await anyio.to_thread.run_sync(self._write, text)
        except OSError as e:
            raise SystemdCollectorError(f"cannot write the state file {self.path}: {e.strerror}") from e
