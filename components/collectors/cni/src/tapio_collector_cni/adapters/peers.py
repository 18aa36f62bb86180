"""Who is on the other end of a veth: peer namespace id -> network namespace -> a process in it
-> its cgroup -> container id and pod UID (`tapio_common.cgroups`).

Reads /proc (`/proc/<pid>/ns/net`, `/proc/<pid>/cgroup`, `/proc/<pid>/comm`) and asks the kernel
which id this namespace gives each network namespace found there (RTM_GETNSID through the
sampler's socket). Blocking; called from the sampler's worker thread, only for veths that have a
finding, and cached: an entry is re-checked (its process still in that namespace) before use,
and a namespace with no process is not looked for again before `negative_ttl` seconds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from tapio_collector_cni.domain.events import Peer
from tapio_common.cgroups import parse_proc_cgroup
from tapio_common.logging import get_logger

log = get_logger(__name__)
_CANDIDATES_PER_NETNS = 16
_INFRA_COMMS = frozenset({"pause", "conmon", "containerd-shim", "containerd-shim-runc-v2"})


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class PeerResolver:
    """nsid -> Peer, for the namespace the sampler's socket lives in."""

    def __init__(
        self,
        nsid_of: Callable[[str], int],
        proc: str | Path = "/proc",
        default_runtime: str = "containerd",
        negative_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._nsid_of = nsid_of
        self._proc = str(proc)
        self._runtime = default_runtime
        self._negative_ttl = negative_ttl
        self._clock = clock
        self._known: dict[int, Peer] = {}
        self._missing: dict[int, float] = {}  # nsid -> when it was last looked for in vain
        self.scans = 0

    def resolve(self, nsids: Iterable[int]) -> dict[int, Peer]:
        """The peers of the namespace ids asked for that can be found."""
        out: dict[int, Peer] = {}
        wanted: set[int] = set()
        now = self._clock()
        for nsid in set(nsids):
            if nsid < 0:
                continue
            peer = self._known.get(nsid)
            if peer is not None and self._still_there(peer):
                out[nsid] = peer
                continue
            self._known.pop(nsid, None)
            if now - self._missing.get(nsid, -1e18) >= self._negative_ttl:
                wanted.add(nsid)
        if wanted:
            found = self._scan(wanted)
            for nsid in wanted:
                if nsid in found:
                    self._known[nsid] = out[nsid] = found[nsid]
                    self._missing.pop(nsid, None)
                else:
                    self._missing[nsid] = now
        self._bound()
        return out

    def forget(self, keep: Iterable[int]) -> None:
        """Drops cached namespace ids not in `keep` (the ids veth peers still use)."""
        live = set(keep)
        for cache in (self._known, self._missing):
            for nsid in [n for n in cache if n not in live]:
                del cache[nsid]

    def _bound(self, limit: int = 65536) -> None:
        for cache in (self._known, self._missing):
            while len(cache) > limit:
                del cache[next(iter(cache))]

    def _still_there(self, peer: Peer) -> bool:
        try:
            return os.readlink(f"{self._proc}/{peer.pid}/ns/net") == peer.netns
        except OSError:
            return False

    def _scan(self, wanted: set[int]) -> dict[int, Peer]:
        self.scans += 1
        own = self._netns_of("self")
        by_netns: dict[str, list[int]] = {}
        try:
            entries = os.listdir(self._proc)
        except OSError as e:
            log.warning("cannot list processes", proc=self._proc, error=e.strerror)
            return {}
        for entry in entries:
            if not entry.isdigit():
                continue
            ns = self._netns_of(entry)
            if ns and ns != own:
                pids = by_netns.setdefault(ns, [])
                if len(pids) < _CANDIDATES_PER_NETNS:
                    pids.append(int(entry))
        found: dict[int, Peer] = {}
        for ns, pids in by_netns.items():
            nsid = self._nsid_of(f"{self._proc}/{pids[0]}/ns/net")
            if nsid in wanted and nsid not in found:
                found[nsid] = self._peer(ns, pids)
                if len(found) == len(wanted):
                    break
        return found

    def _netns_of(self, pid: str) -> str:
        try:
            return os.readlink(f"{self._proc}/{pid}/ns/net")
        except OSError:
            return ""

    def _peer(self, ns: str, pids: list[int]) -> Peer:
        """The most telling process of a namespace: an application container's before the pod's
        infrastructure (pause, shims), any container's before a plain process."""
        best: tuple[int, Peer] | None = None
        for pid in sorted(pids):
            comm = _read(f"{self._proc}/{pid}/comm").strip()
            identity = parse_proc_cgroup(_read(f"{self._proc}/{pid}/cgroup"))
            if identity is None:
                rank, peer = 2, Peer(netns=ns, pid=pid, comm=comm)
            else:
                rank = 1 if comm in _INFRA_COMMS else 0
                peer = Peer(ns, pid, comm, identity.ref(self._runtime), identity.pod_uid)
            if best is None or rank < best[0]:
                best = (rank, peer)
            if rank == 0:
                break
        assert best is not None  # pids is never empty
        return best[1]
