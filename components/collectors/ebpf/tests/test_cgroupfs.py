"""cgroup id -> path -> container over a real directory tree (ids are directory inodes, as in
cgroup2), with the rescan rules driven by an explicit clock."""

from __future__ import annotations

from pathlib import Path

from tapio_collector_ebpf.adapters.cgroupfs import CgroupResolver

CID = "0123456789abcdef" * 4
UID = "11111111-2222-3333-4444-555555555555"


def test_ids_map_to_container_and_pod(tmp_path: Path) -> None:
    pod = (
        tmp_path
        / "kubepods.slice"
        / "kubepods-burstable.slice"
        / f"kubepods-burstable-pod{UID.replace('-', '_')}.slice"
    )
    ctr = pod / f"cri-containerd-{CID}.scope"
    ctr.mkdir(parents=True)
    r = CgroupResolver(root=tmp_path)
    assert r.container(ctr.stat().st_ino) == (f"containerd://{CID}", UID)
    assert r.container(pod.stat().st_ino) == ("", "")  # the pod's own cgroup is no container
    assert r.path(tmp_path.stat().st_ino) == "/"


def test_unknown_ids_rescan_at_most_once_per_interval(tmp_path: Path) -> None:
    now = [100.0]
    r = CgroupResolver(root=tmp_path, rescan_interval_s=1.0, new_rescan_gap_s=1.0, clock=lambda: now[0])
    assert r.path(tmp_path.stat().st_ino) == "/"  # first lookup scans
    late = tmp_path / "docker" / CID
    late.mkdir(parents=True)
    ino = late.stat().st_ino
    now[0] += 0.5
    assert r.path(ino) is None  # within the interval: no rescan
    now[0] += 0.6
    assert r.container(ino) == (f"docker://{CID}", "")
