"""Container identity from cgroup paths of every runtime layout kubelet and Docker write."""

from __future__ import annotations

import pytest

from tapio_common.cgroups import ContainerIdentity, parse_cgroup_path, parse_proc_cgroup

CID = "0123456789abcdef" * 4
UID = "8f2c4a1e-1b2c-4d5e-9f00-123456789abc"
UID_SYSTEMD = UID.replace("-", "_")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/kubepods/burstable/pod{UID}/{CID}", ContainerIdentity(CID, "", UID)),
        (f"/kubepods/pod{UID}/{CID}", ContainerIdentity(CID, "", UID)),
        (
            "/kubepods.slice/kubepods-burstable.slice/"
            f"kubepods-burstable-pod{UID_SYSTEMD}.slice/cri-containerd-{CID}.scope",
            ContainerIdentity(CID, "containerd", UID),
        ),
        (
            f"/kubepods.slice/kubepods-pod{UID_SYSTEMD}.slice/crio-{CID}.scope",
            ContainerIdentity(CID, "crio", UID),
        ),
        (f"/kubepods/besteffort/pod{UID}/crio-{CID}", ContainerIdentity(CID, "crio", UID)),
        (
            f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_SYSTEMD}.slice/docker-{CID}.scope",
            ContainerIdentity(CID, "docker", UID),
        ),
        (f"/system.slice/docker-{CID}.scope", ContainerIdentity(CID, "docker", "")),
        (f"/docker/{CID}", ContainerIdentity(CID, "docker", "")),
        (f"/machine.slice/libpod-{CID}.scope", ContainerIdentity(CID, "podman", "")),
        # nested (kind node in Docker): the inner container wins
        (
            f"/docker/{'f' * 64}/kubepods/burstable/pod{UID}/{CID}",
            ContainerIdentity(CID, "", UID),
        ),
        # a test or tenant prefix before the kubelet layout changes nothing
        (
            f"/tcni-1/kubepods.slice/kubepods-pod{UID_SYSTEMD}.slice/cri-containerd-{CID}.scope",
            ContainerIdentity(CID, "containerd", UID),
        ),
    ],
)
def test_layouts(path: str, expected: ContainerIdentity) -> None:
    assert parse_cgroup_path(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/user.slice/user-0.slice/session-1.scope",
        f"/kubepods/burstable/pod{UID}",  # the pod's cgroup, not a container
        f"/kubepods.slice/kubepods-pod{UID_SYSTEMD}.slice/crio-conmon-{CID}.scope",  # CRI-O's monitor
        f"/some/where/{CID}",  # bare hex outside a pod or docker directory
        f"/kubepods/pod{UID}/{CID[:-1]}",  # 63 hex digits
        "",
    ],
)
def test_not_a_container(path: str) -> None:
    assert parse_cgroup_path(path) is None


def test_ref_uses_the_kubernetes_prefix() -> None:
    assert ContainerIdentity(CID, "crio").ref() == f"cri-o://{CID}"
    assert ContainerIdentity(CID, "").ref() == f"containerd://{CID}"
    assert ContainerIdentity(CID, "").ref("docker") == f"docker://{CID}"


def test_proc_cgroup_prefers_the_unified_line() -> None:
    other = "a" * 64
    text = (
        f"12:memory:/kubepods/pod{UID}/{other}\n"
        "1:name=systemd:/\n"
        f"0::/kubepods.slice/kubepods-pod{UID_SYSTEMD}.slice/cri-containerd-{CID}.scope\n"
    )
    assert parse_proc_cgroup(text) == ContainerIdentity(CID, "containerd", UID)


def test_proc_cgroup_falls_back_to_v1_hierarchies() -> None:
    text = f"4:memory:/kubepods/burstable/pod{UID}/{CID}\n3:cpuset:/\n0::/\n"
    assert parse_proc_cgroup(text) == ContainerIdentity(CID, "", UID)


def test_proc_cgroup_of_a_host_process() -> None:
    assert parse_proc_cgroup("0::/init.scope\n1:name=systemd:/init.scope\n") is None
    assert parse_proc_cgroup("garbage\n") is None
