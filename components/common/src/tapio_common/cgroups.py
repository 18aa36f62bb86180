"""Container identity from a cgroup path: the container id, its runtime and the pod UID, for the
path layouts of containerd, CRI-O, Docker and podman under kubelet's cgroupfs and systemd drivers.

Pure (text in, identity out). Fed by `/proc/<pid>/cgroup` (read by collectors) or by a cgroup path
the kernel reports (eBPF). Examples of what it understands:

    /kubepods/burstable/pod<uid>/<64 hex>                                      cgroupfs driver
    /kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_with_underscores>.slice/
        cri-containerd-<64 hex>.scope                                          systemd driver, containerd
    .../crio-<64 hex>.scope   (crio-conmon-<id>.scope is the monitor, not the container)   CRI-O
    /system.slice/docker-<64 hex>.scope, /docker/<64 hex>                      Docker
    /machine.slice/libpod-<64 hex>.scope                                       podman

A bare 64-hex directory under a kubepods pod directory names no runtime: `runtime` is then "" and
the caller decides (a node knows its runtime). The innermost match wins, so nested layouts (kind,
a container inside a Docker container) give the inner container.
"""

from __future__ import annotations

import re

import attrs

RUNTIME_PREFIXES = {
    "containerd": "containerd://",
    "crio": "cri-o://",
    "docker": "docker://",
    "podman": "podman://",
}
"""How Kubernetes writes a container id of each runtime (`containerStatuses[].containerID`)."""

_HEX64 = r"[0-9a-f]{64}"
# One path segment naming a container: (runtime, id).
_SEGMENT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("containerd", re.compile(rf"^cri-containerd-({_HEX64})\.scope$")),
    ("crio", re.compile(rf"^crio-({_HEX64})(?:\.scope)?$")),
    ("docker", re.compile(rf"^docker-({_HEX64})\.scope$")),
    ("podman", re.compile(rf"^libpod-({_HEX64})(?:\.scope)?$")),
    ("", re.compile(rf"^({_HEX64})$")),
)
_UID = r"[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}"
_POD_SEGMENT = re.compile(rf"^(?:kubepods(?:-[a-z]+)*-)?pod({_UID})(?:\.slice)?$")


@attrs.frozen
class ContainerIdentity:
    """Who a cgroup belongs to. `runtime` is containerd|crio|docker|podman, or "" when the path
    does not say; `pod_uid` is "" outside Kubernetes pods."""

    container_id: str
    runtime: str = ""
    pod_uid: str = ""

    def ref(self, default_runtime: str = "containerd") -> str:
        """The Kubernetes form `containerd://<id>` (the runtime of the path, else `default_runtime`)."""
        runtime = self.runtime or default_runtime
        return RUNTIME_PREFIXES.get(runtime, f"{runtime}://") + self.container_id


def parse_cgroup_path(path: str) -> ContainerIdentity | None:
    """The container a cgroup path belongs to, or None (a host process, a pod-level cgroup, a
    conmon monitor). A bare 64-hex segment counts only under a pod or a `docker` directory."""
    segments = [s for s in path.strip().split("/") if s]
    for i in range(len(segments) - 1, -1, -1):
        seg = segments[i]
        for runtime, pattern in _SEGMENT_PATTERNS:
            m = pattern.match(seg)
            if m is None:
                continue
            pod_uid = _pod_uid(segments[:i])
            if not runtime:
                parent = segments[i - 1] if i else ""
                if parent == "docker":
                    runtime = "docker"
                elif not pod_uid:
                    break  # a bare hex directory elsewhere is not a known layout
            return ContainerIdentity(container_id=m.group(1), runtime=runtime, pod_uid=pod_uid)
    return None


def _pod_uid(segments: list[str]) -> str:
    for seg in reversed(segments):
        m = _POD_SEGMENT.match(seg)
        if m is not None:
            return m.group(1).replace("_", "-")
    return ""


def parse_proc_cgroup(text: str) -> ContainerIdentity | None:
    """The container of a process from the text of `/proc/<pid>/cgroup` (`id:controllers:path`
    lines, cgroup v1, v2 or both): the unified (`0::`) line first, then the v1 hierarchies."""
    paths: list[tuple[int, str]] = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        rank = 0 if hierarchy == "0" and not controllers else 1
        paths.append((rank, path))
    for _rank, path in sorted(paths, key=lambda p: p[0]):
        identity = parse_cgroup_path(path)
        if identity is not None:
            return identity
    return None
