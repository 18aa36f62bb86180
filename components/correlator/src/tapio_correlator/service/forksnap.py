"""Engine snapshots taken by a forked copy of the process, so the event loop never stops to pickle.

Pickling the state of 100,000 tracked pods takes over a second of CPU; done in the loop, every
snapshot would hold back every event behind it. Instead the runner forks (a few milliseconds): the
child holds a copy-on-write image of the engine exactly as it was at that moment, pickles and
compresses it into an anonymous file (on idle CPU only: SCHED_IDLE) and exits; the parent goes on correlating and collects the
result when the child's pidfd turns readable. The child's memory is the engine's pages it touches
(reference counts), freed when it exits: `SnapshotBlob.child_private_mb` is what it added to the
machine's memory at its end (its peak RSS, `child_rss_mb`, counts the pages it still shares).
"""

from __future__ import annotations

import gc
import os
import signal
import struct
import tempfile
from typing import IO, NoReturn

import anyio
import attrs
import zstandard

from tapio_correlator.engine import Engine
from tapio_correlator.errors import CorrelatorError

_HEADER = struct.Struct("<QQ")  # uncompressed size, private bytes; then the zstd frame or an error text


@attrs.frozen
class SnapshotBlob:
    """A compressed engine snapshot (zstd) and its uncompressed size."""

    blob: bytes
    size: int
    child_rss_mb: int
    child_private_mb: int


class ForkedSnapshot:
    """One snapshot in progress: `start()` forks at once, `result()` waits without blocking the loop."""

    def __init__(self, level: int = 1, time_limit: float = 300.0) -> None:
        self.level = level
        self.time_limit = time_limit  # seconds the child may take before it is killed
        self.pid = 0
        self._out: IO[bytes] | None = None

    def start(self, engine: Engine) -> None:
        """Forks now: the snapshot is the engine exactly as it is at this call."""
        self._out = tempfile.TemporaryFile(prefix="tapio-snapshot-")  # noqa: SIM115 - closed by result()
        try:
            pid = os.fork()
        except OSError as e:
            self._out.close()
            raise CorrelatorError(f"cannot fork to take a snapshot: {e}") from e
        if pid == 0:
            _child(engine, self._out.fileno(), self.level)
        self.pid = pid

    async def result(self) -> SnapshotBlob:
        """Waits for the child; raises CorrelatorError if it failed or did not finish within
        `time_limit`. Cancelled or timed out: the child is killed."""
        assert self._out is not None, "start() first"
        try:
            pidfd = os.pidfd_open(self.pid)
            try:
                with anyio.fail_after(self.time_limit):
                    await anyio.wait_readable(pidfd)
            except TimeoutError as e:
                raise CorrelatorError(
                    f"the snapshot child did not finish within {self.time_limit:.0f} s (killed)"
                ) from e
            finally:
                os.close(pidfd)
            _, status, usage = os.wait4(self.pid, os.WNOHANG)  # noqa: ASYNC222 - exited (pidfd readable)
            self.pid = 0
            data = await anyio.to_thread.run_sync(_read, self._out)
        finally:
            if self.pid:  # cancelled or failed while the child runs
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)  # noqa: ASYNC222 - reaping a SIGKILLed child is immediate
                self.pid = 0
            self._out.close()
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            detail = data[_HEADER.size :].decode(errors="replace") or f"exit status {code}"
            raise CorrelatorError(f"the snapshot child failed: {detail}")
        size, private = _HEADER.unpack_from(data)
        return SnapshotBlob(
            blob=data[_HEADER.size :],
            size=size,
            child_rss_mb=usage.ru_maxrss // 1024,
            child_private_mb=private >> 20,
        )


def _read(out: IO[bytes]) -> bytes:
    out.seek(0)
    return out.read()


def _child(engine: Engine, fd: int, level: int) -> NoReturn:
    """In the forked child: write the snapshot (or the error) to fd, then leave without cleanup."""
    code = 1
    try:
        gc.disable()  # a collection would touch (copy) every tracked object for nothing
        # Background work: the child runs only on CPU time nothing else wants (SCHED_IDLE), so the
        # correlating parent, nats-server and collectors on the node keep theirs.
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        signal.set_wakeup_fd(-1)  # the parent's event loop owns that socket
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        data = engine.snapshot()
        blob = zstandard.ZstdCompressor(level=level).compress(data)
        _write_all(fd, _HEADER.pack(len(data), _private_bytes()) + blob)
        code = 0
    except BaseException as e:  # noqa: BLE001 - reported to the parent through the file, then exit
        _write_all(fd, _HEADER.pack(0, 0) + f"{type(e).__name__}: {e}".encode())
    finally:
        os._exit(code)


def _private_bytes() -> int:
    """Memory this process does not share (Private_Clean + Private_Dirty of /proc/self/smaps_rollup)."""
    total = 0
    with open("/proc/self/smaps_rollup", "rb") as f:
        for line in f:
            if line.startswith((b"Private_Clean:", b"Private_Dirty:")):
                total += int(line.split()[1]) * 1024
    return total


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
