"""Which units the collector follows: include globs minus exclude globs (shell-style, as systemd's
own `systemctl list-units PATTERN`). Fed by the settings; asked by the source for every unit name."""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from functools import lru_cache

import attrs

from tapio_common.errors import ConfigError

# What an SRE looks at on a Kubernetes node: the kubelet and container runtimes first (the
# correlator's node_failure rule keys on them), then the node's network, time, logging and access.
DEFAULT_INCLUDE: tuple[str, ...] = (
    "kubelet.service",
    "containerd.service",
    "crio.service",
    "cri-o.service",
    "docker.service",
    "docker.socket",
    "cri-docker.service",
    "cri-docker.socket",
    "kube-proxy.service",
    "k3s.service",
    "k3s-agent.service",
    "rke2-server.service",
    "rke2-agent.service",
    "etcd.service",
    "kube-apiserver.service",
    "kube-controller-manager.service",
    "kube-scheduler.service",
    "flanneld.service",
    "systemd-journald.service",
    "systemd-networkd.service",
    "systemd-resolved.service",
    "NetworkManager.service",
    "networking.service",
    "systemd-timesyncd.service",
    "chrony.service",
    "chronyd.service",
    "ntp.service",
    "ssh.service",
    "sshd.service",
    "auditd.service",
)


def check_globs(_inst: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]) -> None:
    if attribute.name == "include" and not value:
        raise ConfigError(
            "include names no unit glob: nothing would be followed (e.g. --unit 'kube*.service')"
        )
    for glob in value:
        if not glob or not glob.strip() or any(c in glob for c in "\n/"):
            raise ConfigError(
                f"bad unit pattern {glob!r} in {attribute.name}: expected a unit glob like 'kube*.service'"
            )


def globs(value: Iterable[str]) -> tuple[str, ...]:
    """A tuple of globs (a lone string is one glob)."""
    return (value,) if isinstance(value, str) else tuple(value)


@attrs.frozen
class UnitFilter:
    """`include` globs (a unit must match one) minus `exclude` globs (it must match none)."""

    include: tuple[str, ...] = attrs.field(default=DEFAULT_INCLUDE, converter=globs, validator=check_globs)
    exclude: tuple[str, ...] = attrs.field(default=(), converter=globs, validator=check_globs)

    def __call__(self, unit: str) -> bool:
        return _matches(self.include, self.exclude, unit)


@lru_cache(maxsize=65536)
def _matches(include: tuple[str, ...], exclude: tuple[str, ...], unit: str) -> bool:
    return any(fnmatchcase(unit, g) for g in include) and not any(fnmatchcase(unit, g) for g in exclude)
