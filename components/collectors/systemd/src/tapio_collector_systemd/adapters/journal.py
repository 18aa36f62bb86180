"""The last journal lines of a unit, for failed units (a cold path): `journalctl -u UNIT -n N`
in a worker thread, never in the event loop. `root` reads another root's journal
(`journalctl --root`, e.g. the host's mounted into a DaemonSet pod at /host)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import anyio

from tapio_common.logging import get_logger

log = get_logger(__name__)
TIMEOUT = 10.0
MAX_LINE = 512


class Journal:
    def __init__(
        self, lines: int = 10, root: str = "", delay: float = 0.2, binary: str = "journalctl"
    ) -> None:
        self.lines = lines
        self.root = root
        self.delay = delay  # journald writes a unit's last output a moment after systemd reports the failure
        self.binary = binary
        self.failures = 0

    def command(self, unit: str) -> list[str]:
        cmd = [self.binary, "--no-pager", "--quiet", "-o", "short-iso", "-n", str(self.lines), "-u", unit]
        if self.root:
            cmd[1:1] = ["--root", self.root]
        return cmd

    def _read(self, unit: str) -> Sequence[str]:
        try:
            r = subprocess.run(
                self.command(unit), capture_output=True, text=True, timeout=TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            self.failures += 1
            log.warning("cannot read the journal", unit=unit, error=str(e))
            return ()
        if r.returncode != 0:
            self.failures += 1
            log.warning("journalctl failed", unit=unit, rc=r.returncode, error=r.stderr.strip()[:200])
            return ()
        return [line[:MAX_LINE] for line in r.stdout.splitlines()[-self.lines :]]

    async def last_lines(self, unit: str) -> Sequence[str]:
        """Up to `lines` last lines (short-iso: time, host, identifier[pid]: message); none on error."""
        if self.lines <= 0:
            return ()
        if self.delay > 0:
            await anyio.sleep(self.delay)
        return await anyio.to_thread.run_sync(self._read, unit)
