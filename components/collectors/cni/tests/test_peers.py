"""veth peer -> process -> container, over a /proc laid out as the kernel lays it out (files and
`ns/net` links in a directory tree) and a namespace-id table standing for RTM_GETNSID."""

from __future__ import annotations

import os
from pathlib import Path

from tapio_collector_cni.adapters.peers import PeerResolver

CID_APP, CID_PAUSE = "a" * 64, "b" * 64
UID = "8f2c4a1e-1b2c-4d5e-9f00-123456789abc"
POD_CG = f"/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice"


def process(proc: Path, pid: int, netns: str, comm: str, cgroup: str) -> None:
    d = proc / str(pid)
    (d / "ns").mkdir(parents=True)
    os.symlink(netns, d / "ns" / "net")
    (d / "comm").write_text(comm + "\n")
    (d / "cgroup").write_text(f"0::{cgroup}\n")


class Kernel:
    """Namespace ids this namespace gives the namespaces, by the `ns/net` link they are read from."""

    def __init__(self, proc: Path, ids: dict[str, int]) -> None:
        self.proc, self.ids, self.asked = proc, ids, 0

    def nsid_of(self, path: str) -> int:
        self.asked += 1
        try:
            return self.ids.get(os.readlink(path), -1)
        except OSError:
            return -1


def tree(tmp_path: Path) -> Path:
    proc = tmp_path / "proc"
    (proc / "self" / "ns").mkdir(parents=True)
    os.symlink("net:[1]", proc / "self" / "ns" / "net")
    process(proc, 1, "net:[1]", "init", "/init.scope")
    process(proc, 100, "net:[50]", "pause", f"{POD_CG}/cri-containerd-{CID_PAUSE}.scope")
    process(proc, 101, "net:[50]", "nginx", f"{POD_CG}/cri-containerd-{CID_APP}.scope")
    process(proc, 200, "net:[60]", "sleep", "/user.slice")
    return proc


def test_application_container_before_pause(tmp_path: Path) -> None:
    proc = tree(tmp_path)
    kernel = Kernel(proc, {"net:[50]": 3, "net:[60]": 4})
    peers = PeerResolver(kernel.nsid_of, proc).resolve({3, 4})
    assert peers[3].pid == 101
    assert peers[3].comm == "nginx"
    assert peers[3].container_id == f"containerd://{CID_APP}"
    assert peers[3].pod_uid == UID
    assert peers[3].netns == "net:[50]"
    assert (peers[4].pid, peers[4].container_id, peers[4].pod_uid) == (200, "", "")


def test_cached_while_the_process_stays_then_looked_up_again(tmp_path: Path) -> None:
    proc = tree(tmp_path)
    kernel = Kernel(proc, {"net:[50]": 3})
    resolver = PeerResolver(kernel.nsid_of, proc)
    resolver.resolve({3})
    scans = resolver.scans
    assert resolver.resolve({3})[3].pid == 101
    assert resolver.scans == scans  # cached: no /proc walk
    for name in ("comm", "cgroup", "ns/net"):
        (proc / "101" / name).unlink()
    (proc / "101" / "ns").rmdir()
    (proc / "101").rmdir()  # the process ended: the pause container is what is left
    assert resolver.resolve({3})[3].pid == 100
    assert resolver.scans == scans + 1


def test_a_namespace_without_processes_is_not_looked_for_at_every_sample(tmp_path: Path) -> None:
    proc = tree(tmp_path)
    now = [0.0]
    resolver = PeerResolver(Kernel(proc, {}).nsid_of, proc, negative_ttl=30, clock=lambda: now[0])
    assert resolver.resolve({9}) == {}
    assert resolver.resolve({9}) == {}
    assert resolver.scans == 1
    now[0] = 31.0
    resolver.resolve({9})
    assert resolver.scans == 2


def test_forget_keeps_only_live_ids(tmp_path: Path) -> None:
    proc = tree(tmp_path)
    resolver = PeerResolver(Kernel(proc, {"net:[50]": 3, "net:[60]": 4}).nsid_of, proc)
    resolver.resolve({3, 4})
    resolver.forget({4})
    scans = resolver.scans
    resolver.resolve({4})
    assert resolver.scans == scans
    resolver.resolve({3})
    assert resolver.scans == scans + 1
