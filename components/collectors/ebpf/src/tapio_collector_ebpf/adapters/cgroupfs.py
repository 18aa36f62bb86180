"""cgroup id -> cgroup path -> container, by walking the cgroup v2 hierarchy.

The id bpf_get_current_cgroup_id() returns is the inode number of the cgroup's directory in the
cgroup2 file system. Paths are cached. Ids of new cgroups only grow, so an unknown id above the
largest one of the last scan (a cgroup created since) triggers a rescan at once, each such id
once (at most every `new_rescan_gap_s`); other unknown ids (a cgroup removed already) at most
once per `rescan_interval_s`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from tapio_common.cgroups import parse_cgroup_path
from tapio_common.logging import get_logger

log = get_logger(__name__)
NO_CONTAINER = ("", "")


def cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a
    hybrid host), None without one."""
    try:
        text = Path(mountinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            return Path(left.split(" ")[4])
    return None


class CgroupResolver:
    def __init__(
        self,
        root: Path | None = None,
        default_runtime: str = "containerd",
        rescan_interval_s: float = 1.0,
        new_rescan_gap_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root if root is not None else cgroup2_mount()
        self.default_runtime = default_runtime
        self.rescan_interval_s = rescan_interval_s
        self.new_rescan_gap_s = new_rescan_gap_s
        self._clock = clock
        self._paths: dict[int, str] = {}
        self._last_scan = float("-inf")
        self._max_id = 0
        self._missed: set[int] = set()
        self._containers: dict[int, tuple[str, str]] = {}
        if self.root is None:
            log.warning("no cgroup v2 hierarchy mounted: events will carry cgroup ids without containers")

    def path(self, cgroup_id: int) -> str | None:
        """The cgroup's path relative to the hierarchy root ("/" for the root), None if unknown."""
        p = self._paths.get(cgroup_id)
        if p is not None or self.root is None:
            return p
        since = self._clock() - self._last_scan
        new = cgroup_id > self._max_id and cgroup_id not in self._missed
        if since >= self.rescan_interval_s or (new and since >= self.new_rescan_gap_s):
            self.rescan()
            p = self._paths.get(cgroup_id)
            if p is None:
                self._missed.add(cgroup_id)
        return p

    def container(self, cgroup_id: int) -> tuple[str, str]:
        """(container id as Kubernetes writes it, pod uid) of a cgroup; ("", "") for the host."""
        found = self._containers.get(cgroup_id)
        if found is not None:
            return found
        p = self.path(cgroup_id)
        ident = parse_cgroup_path(p) if p else None
        found = (ident.ref(self.default_runtime), ident.pod_uid) if ident is not None else NO_CONTAINER
        if p is not None:
            self._containers[cgroup_id] = found
        return found

    def rescan(self) -> None:
        self._last_scan = self._clock()
        if self.root is None:
            return
        found: dict[int, str] = {}
        root = str(self.root)
        stack = [root]
        while stack:
            d = stack.pop()
            try:
                st = os.stat(d)
                found[st.st_ino] = d[len(root) :] or "/"
                with os.scandir(d) as it:
                    stack.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
            except FileNotFoundError:
                continue  # removed while we walked
            except OSError as e:
                log.warning("cannot read cgroup directory", path=d, error=e.strerror)
        self._paths = found
        self._containers = {k: v for k, v in self._containers.items() if k in found}
        self._max_id = max(found, default=0)
        self._missed.clear()
