"""Real cgroups laid out like kubelet's (systemd driver, containerd) for tests that map a process
to its container: `/<prefix>.../kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope`
in the cgroup v2 hierarchy. Removed on exit (processes in it must have ended first).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs


def cgroup2_root() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup` or `/sys/fs/cgroup/unified`)."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "cgroup2":
            return Path(parts[1])
    return None


@attrs.frozen
class ContainerCgroup:
    path: Path  # the container's cgroup directory
    procs: Path  # its cgroup.procs
    container_id: str  # 64 hex
    pod_uid: str


@contextlib.contextmanager
def pod_container_cgroup(prefix: str) -> Iterator[ContainerCgroup]:
    """A fresh container cgroup under `<cgroup2 root>/<prefix><random>/` (raises OSError when
    cgroup v2 is not mounted or not writable)."""
    root = cgroup2_root()
    if root is None:
        raise OSError("no cgroup v2 hierarchy is mounted")
    top = root / f"{prefix}{secrets.token_hex(4)}"
    pod_uid = str(uuid.uuid4())
    cid = secrets.token_hex(32)
    path = (
        top
        / "kubepods.slice"
        / "kubepods-besteffort.slice"
        / f"kubepods-besteffort-pod{pod_uid.replace('-', '_')}.slice"
        / f"cri-containerd-{cid}.scope"
    )
    path.mkdir(parents=True)
    try:
        yield ContainerCgroup(path, path / "cgroup.procs", cid, pod_uid)
    finally:
        _remove_tree(top)


def _remove_tree(top: Path) -> None:
    dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
    for d in [*dirs, top]:
        for _ in range(50):  # a killed process leaves its cgroup a moment later
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)
