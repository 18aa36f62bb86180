"""Real cgroups and named processes for root tests: cgroup v2 directories laid out like a
runtime's, memory cgroups with a small limit (v1 or v2), and copies of /bin/sh with a chosen name
(so their processes carry that comm). Names carry the caller's prefix; everything is removed."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> Path | None:
    """Where the cgroup v2 hierarchy is mounted, None without one."""
    for line in Path(mountinfo).read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            return Path(left.split(" ")[4])
    return None


def tag() -> str:
    """6 random hex digits for unique names."""
    return secrets.token_hex(3)


@contextlib.contextmanager
def named_sh(name: str, prefix: str = "tbpf") -> Iterator[str]:
    """A copy of /bin/sh called `name` (so its processes have that comm); removed afterwards."""
    d = Path(f"/tmp/{prefix}-bin-{tag()}")
    d.mkdir()
    try:
        path = d / name
        shutil.copy("/bin/sh", path)
        yield str(path)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def cgroup2_dir(*parts: str) -> Iterator[Path]:
    """Nested cgroup v2 directories under the hierarchy root; removed (innermost first) afterwards."""
    root = cgroup2_mount()
    if root is None:
        pytest.skip("no cgroup v2 hierarchy mounted")
    made: list[Path] = []
    try:
        d = root
        for p in parts:
            d = d / p
            d.mkdir()
            made.append(d)
        yield d
    finally:
        for d in reversed(made):
            _rmdir_cgroup(d)


def _rmdir_cgroup(d: Path) -> None:
    for _ in range(50):
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)  # its last process is still exiting
    d.rmdir()


@contextlib.contextmanager
def memory_cgroup(name: str, limit_bytes: int) -> Iterator[Path]:
    """A memory cgroup limited to `limit_bytes` without swap (v1 memory controller, or v2 with the
    memory controller); yields its `cgroup.procs`. Only processes put there can be OOM-killed."""
    v1 = Path("/sys/fs/cgroup/memory")
    if (v1 / "memory.limit_in_bytes").exists():
        d = v1 / name
        d.mkdir()
        try:
            (d / "memory.limit_in_bytes").write_text(str(limit_bytes))
            if (d / "memory.memsw.limit_in_bytes").exists():
                (d / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))
            (d / "memory.swappiness").write_text("0")
            yield d / "cgroup.procs"
        finally:
            _rmdir_cgroup(d)
        return
    root = cgroup2_mount()
    if root is None or "memory" not in (root / "cgroup.controllers").read_text().split():
        pytest.skip("no memory cgroup controller (v1 or v2) on this machine")
    d = root / name
    d.mkdir()
    try:
        (d / "memory.max").write_text(str(limit_bytes))
        if (d / "memory.swap.max").exists():
            (d / "memory.swap.max").write_text("0")
        yield d / "cgroup.procs"
    finally:
        _rmdir_cgroup(d)
