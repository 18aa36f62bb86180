"""Event models (tapio.events.v1): field names are the proto field names; times are Unix nanoseconds."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

import attrs

from tapio_common.errors import ContractError


class Source(enum.Enum):
    UNSPECIFIED = "SOURCE_UNSPECIFIED"
    K8S = "SOURCE_K8S"
    SYSTEMD = "SOURCE_SYSTEMD"
    EBPF = "SOURCE_EBPF"
    CNI = "SOURCE_CNI"


class Severity(enum.Enum):
    UNSPECIFIED = "SEVERITY_UNSPECIFIED"
    DEBUG = "SEVERITY_DEBUG"
    INFO = "SEVERITY_INFO"
    WARNING = "SEVERITY_WARNING"
    ERROR = "SEVERITY_ERROR"
    CRITICAL = "SEVERITY_CRITICAL"

    @property
    def token(self) -> str:
        """The subject token: debug|info|warning|error|critical (unspecified counts as info)."""
        # `_name_`, not `.name` (an enum property: ~1 us a call, on every alert encoded)
        return "info" if self is Severity.UNSPECIFIED else self._name_.lower()

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


def str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def frozen_map(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return dict(value or {})


@attrs.frozen
class Workload:
    kind: str = ""
    name: str = ""


@attrs.frozen
class OwnerRef:
    kind: str = ""
    name: str = ""
    uid: str = ""


def _owners(value: Iterable[OwnerRef]) -> tuple[OwnerRef, ...]:
    return tuple(value)


@attrs.frozen
class Context:
    cluster: str = ""
    node: str = ""
    namespace: str = ""
    pod: str = ""
    pod_uid: str = ""
    container: str = ""
    container_id: str = ""
    pid: int = 0
    comm: str = ""
    cgroup_id: int = 0
    service: str = ""
    workload: Workload | None = None
    owners: tuple[OwnerRef, ...] = attrs.field(default=(), converter=_owners)
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=frozen_map, hash=False)


@attrs.frozen
class ObjectRef:
    kind: str = ""
    name: str = ""
    namespace: str = ""
    uid: str = ""


@attrs.frozen
class ServicePort:
    name: str = ""
    port: int = 0
    protocol: str = ""
    target_port: str = ""


def _ports(value: Iterable[ServicePort]) -> tuple[ServicePort, ...]:
    return tuple(value)


@attrs.frozen
class K8sEvent:
    kind: str = ""
    name: str = ""
    uid: str = ""
    resource_version: str = ""
    reason: str = ""
    phase: str = ""
    restart_count: int = 0
    exit_code: int = 0
    termination_reason: str = ""
    ready: bool = False
    conditions: Mapping[str, str] = attrs.field(factory=dict, converter=frozen_map, hash=False)
    ready_endpoints: int = 0
    desired_replicas: int = 0
    available_replicas: int = 0
    selector: Mapping[str, str] = attrs.field(factory=dict, converter=frozen_map, hash=False)
    involved_object: ObjectRef | None = None
    pod_ips: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    host_ip: str = ""
    cluster_ips: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    ports: tuple[ServicePort, ...] = attrs.field(default=(), converter=_ports)
    container_ids: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)


@attrs.frozen
class SystemdEvent:
    unit: str = ""
    active_state: str = ""
    sub_state: str = ""
    result: str = ""
    exit_code: int = 0
    exit_status: int = 0
    previous_state: str = ""
    restarts: int = 0


@attrs.frozen
class KernelEvent:
    pid: int = 0
    tid: int = 0
    ppid: int = 0
    comm: str = ""
    filename: str = ""
    exit_code: int = 0
    signal: int = 0
    oom_victim_pid: int = 0
    oom_pages: int = 0
    saddr: str = ""
    daddr: str = ""
    sport: int = 0
    dport: int = 0
    latency_ns: int = 0
    count: int = 0
    window_ns: int = 0


@attrs.frozen
class NetworkEvent:
    interface: str = ""
    direction: str = ""
    packets: int = 0
    bytes: int = 0
    drops: int = 0
    errors: int = 0
    loss_ratio: float = 0.0
    window_seconds: float = 0.0
    peer_pod: str = ""


_PAYLOADS = ("k8s", "systemd", "kernel", "network")


@attrs.frozen
class Event:
    """One thing that happened. `time` is Unix time in nanoseconds (kernel/API time)."""

    id: str = ""
    time: int = 0
    source: Source = Source.UNSPECIFIED
    type: str = ""
    action: str = ""
    severity: Severity = Severity.UNSPECIFIED
    message: str = ""
    context: Context = Context()
    k8s: K8sEvent | None = None
    systemd: SystemdEvent | None = None
    kernel: KernelEvent | None = None
    network: NetworkEvent | None = None
    attributes: Mapping[str, str] = attrs.field(factory=dict, converter=frozen_map, hash=False)

    def __attrs_post_init__(self) -> None:
        if sum(getattr(self, p) is not None for p in _PAYLOADS) > 1:
            raise ContractError(
                f"event {self.id}: more than one payload set (oneof k8s/systemd/kernel/network)"
            )


def _events(value: Iterable[Event]) -> tuple[Event, ...]:
    return tuple(value)


@attrs.frozen
class EventBatch:
    events: tuple[Event, ...] = attrs.field(default=(), converter=_events)
    batch_id: str = ""
