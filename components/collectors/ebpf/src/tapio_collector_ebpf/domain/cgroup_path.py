"""Container and pod of a cgroup path, for the containerd, CRI-O and Docker layouts (systemd
and cgroupfs drivers). Pure: a path in, a ContainerRef out.

Examples (cgroup v2 paths relative to the mount):
  /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope
  /kubepods/burstable/pod<uid>/<id>                         (cgroupfs driver; runtime: the default)
  /kubepods.slice/kubepods-pod<uid>.slice/crio-<id>.scope   /system.slice/docker-<id>.scope   /docker/<id>
"""

from __future__ import annotations

import re
from functools import lru_cache

import attrs

_CONTAINER = re.compile(r"^(?:(cri-containerd|crio|docker|libpod)[-:])?([0-9a-f]{64})(?:\.scope)?$")
_COLON_FORM = re.compile(r":(cri-containerd|crio|docker):([0-9a-f]{64})$")
_POD = re.compile(r"(?:^|-)pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$")
_SCHEME = {"cri-containerd": "containerd", "crio": "cri-o", "docker": "docker", "libpod": "podman"}
RUNTIMES = ("containerd", "cri-o", "docker")


@attrs.frozen
class ContainerRef:
    container_id: str = ""
    """As Kubernetes writes it in containerStatuses: `containerd://<id>`, `cri-o://<id>`, `docker://<id>`."""
    pod_uid: str = ""
    runtime: str = ""

    @property
    def empty(self) -> bool:
        return not (self.container_id or self.pod_uid)


NO_CONTAINER = ContainerRef()


@lru_cache(maxsize=16384)
def container_of(path: str, default_runtime: str = "containerd") -> ContainerRef:
    """The container and pod a cgroup path belongs to; NO_CONTAINER for host cgroups.

    A bare 64-hex directory (cgroupfs driver) gets `default_runtime`, as the path does not say;
    one under `/docker/` is Docker's. The innermost matching component wins.
    """
    parts = [p for p in path.split("/") if p]
    pod_uid = ""
    runtime = cid = ""
    for i, part in enumerate(parts):
        m = _POD.search(part)
        if m:
            pod_uid = m.group(1).replace("_", "-")
            continue
        m = _COLON_FORM.search(part)
        if m:
            runtime, cid = _SCHEME[m.group(1)], m.group(2)
            pm = _POD.search(part.split(":", 1)[0])
            if pm:
                pod_uid = pm.group(1).replace("_", "-")
            continue
        m = _CONTAINER.match(part)
        if m:
            prefix = m.group(1)
            if prefix:
                runtime = _SCHEME[prefix]
            elif i > 0 and parts[i - 1] == "docker":
                runtime = "docker"
            else:
                runtime = default_runtime
            cid = m.group(2)
    if not cid:
        return ContainerRef(pod_uid=pod_uid) if pod_uid else NO_CONTAINER
    return ContainerRef(f"{runtime}://{cid}", pod_uid, runtime)
