"""Real cgroups laid out like kubelet's (systemd driver, containerd) for tests that map a process
to its container: `/<prefix>.../kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope`
in the cgroup v2 hierarchy. Removed on exit (processes in it must have ended first).

With `memory_limit`, the container also gets a memory limit as kubelet sets it: on a cgroup v2
machine with the memory controller, `memory.max` on that same directory (the controller enabled
down the path); on a hybrid machine (v1 memory controller beside a v2 hierarchy without
controllers), the same path under the v1 memory hierarchy with `memory.limit_in_bytes`. A process
must be written to `procs` and to `memory_procs` (the same file on v2) to be both mapped to its
container and OOM-killed at the limit.
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
    memory_procs: Path | None = None  # cgroup.procs of the container's memory cgroup (memory_limit)

    def enter(self, pid: int) -> None:
        """Moves `pid` into the container (and its memory cgroup, when there is one)."""
        for procs in dict.fromkeys(p for p in (self.procs, self.memory_procs) if p is not None):
            procs.write_text(str(pid))


@contextlib.contextmanager
def pod_container_cgroup(prefix: str, memory_limit: int | None = None) -> Iterator[ContainerCgroup]:
    """A fresh container cgroup under `<cgroup2 root>/<prefix><random>/` (raises OSError when
    cgroup v2 is not mounted or not writable, or `memory_limit` is given and no memory controller
    can be had: neither v2's nor v1's)."""
    root = cgroup2_root()
    if root is None:
        raise OSError("no cgroup v2 hierarchy is mounted")
    top_name = f"{prefix}{secrets.token_hex(4)}"
    top = root / top_name
    pod_uid = str(uuid.uuid4())
    cid = secrets.token_hex(32)
    rel = (
        Path("kubepods.slice")
        / "kubepods-besteffort.slice"
        / f"kubepods-besteffort-pod{pod_uid.replace('-', '_')}.slice"
        / f"cri-containerd-{cid}.scope"
    )
    path = top / rel
    tops = [top]
    try:
        memory_procs = None
        if memory_limit is None:
            path.mkdir(parents=True)
        elif "memory" in _controllers(root):
            _make_with_memory(root, Path(top_name) / rel)
            (path / "memory.max").write_text(str(memory_limit))
            if (path / "memory.swap.max").exists():
                (path / "memory.swap.max").write_text("0")
            memory_procs = path / "cgroup.procs"
        elif (V1_MEMORY / "memory.limit_in_bytes").exists():
            path.mkdir(parents=True)
            mem = V1_MEMORY / top_name / rel
            tops.append(V1_MEMORY / top_name)
            mem.mkdir(parents=True)
            (mem / "memory.limit_in_bytes").write_text(str(memory_limit))
            if (mem / "memory.memsw.limit_in_bytes").exists():
                (mem / "memory.memsw.limit_in_bytes").write_text(str(memory_limit))
            (mem / "memory.swappiness").write_text("0")
            memory_procs = mem / "cgroup.procs"
        else:
            raise OSError("no memory cgroup controller (v2 or v1) on this machine")
        yield ContainerCgroup(path, path / "cgroup.procs", cid, pod_uid, memory_procs)
    finally:
        for t in tops:
            if t.exists():
                _remove_tree(t)


V1_MEMORY = Path("/sys/fs/cgroup/memory")


def _controllers(d: Path) -> list[str]:
    try:
        return (d / "cgroup.controllers").read_text().split()
    except OSError:
        return []


def _make_with_memory(root: Path, rel: Path) -> None:
    """Creates `root/rel` with the memory controller enabled in every parent's subtree_control."""
    d = root
    for part in rel.parts:
        if "memory" not in (d / "cgroup.subtree_control").read_text().split():
            (d / "cgroup.subtree_control").write_text("+memory")
        d = d / part
        d.mkdir()


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
