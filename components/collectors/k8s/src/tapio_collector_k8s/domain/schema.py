"""The parts of Kubernetes objects the collector reads, as msgspec Structs: the JSON decoder builds
only these fields and skips the rest (managedFields, annotations, specs it does not need) without
building dicts for them, which is where the time of a raw `json.loads` went (~100 us of a 4.8 KB
pod). Every field is optional: what is absent or null in the JSON is None here and the digests
(domain.digest) decide what an object must have. Pure; fed by the reflector's list and watch bodies."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec
from msgspec import Struct, field

Labels = dict[str, str] | None


class OwnerRef(Struct):
    kind: str | None = None
    name: str | None = None
    uid: str | None = None
    controller: bool | None = None


class Meta(Struct):
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = field(default=None, name="resourceVersion")
    labels: Labels = None
    owners: list[OwnerRef] | None = field(default=None, name="ownerReferences")
    created: str | None = field(default=None, name="creationTimestamp")


class ListMeta(Struct):
    resource_version: str | None = field(default=None, name="resourceVersion")
    cont: str | None = field(default=None, name="continue")


class Condition(Struct):
    type: str | None = None
    status: str | None = None
    reason: str | None = None


# -- pods -----------------------------------------------------------------------------------------


class ContainerSpec(Struct):
    name: str | None = None
    image: str | None = None


class PodSpec(Struct):
    node_name: str | None = field(default=None, name="nodeName")
    containers: list[ContainerSpec] | None = None


class Waiting(Struct):
    reason: str | None = None


class Terminated(Struct):
    reason: str | None = None
    exit_code: int | None = field(default=None, name="exitCode")
    finished_at: str | None = field(default=None, name="finishedAt")


class State(Struct):
    # `running` only matters by its presence: UNSET when the key is absent
    running: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    waiting: Waiting | None = None
    terminated: Terminated | None = None


class ContainerStatus(Struct):
    name: str | None = None
    container_id: str | None = field(default=None, name="containerID")
    ready: bool | None = None
    restarts: int | None = field(default=None, name="restartCount")
    state: State | None = None
    last_state: State | None = field(default=None, name="lastState")
    image: str | None = None


class PodIP(Struct):
    ip: str | None = None


class PodStatus(Struct):
    phase: str | None = None
    reason: str | None = None
    conditions: list[Condition] | None = None
    containers: list[ContainerStatus] | None = field(default=None, name="containerStatuses")
    pod_ips: list[PodIP] | None = field(default=None, name="podIPs")
    pod_ip: str | None = field(default=None, name="podIP")
    host_ip: str | None = field(default=None, name="hostIP")


class PodObj(Struct):
    kind: str | None = None
    metadata: Meta | None = None
    spec: PodSpec | None = None
    status: PodStatus | None = None


# -- nodes ----------------------------------------------------------------------------------------


class NodeSpec(Struct):
    unschedulable: bool | None = None


class NodeStatus(Struct):
    conditions: list[Condition] | None = None


class NodeObj(Struct):
    kind: str | None = None
    metadata: Meta | None = None
    spec: NodeSpec | None = None
    status: NodeStatus | None = None


# -- services and EndpointSlices ------------------------------------------------------------------


class ServicePort(Struct):
    name: str | None = None
    port: int | None = None
    protocol: str | None = None
    target_port: int | str | None = field(default=None, name="targetPort")


class ServiceSpec(Struct):
    selector: Labels = None
    type: str | None = None
    cluster_ip: str | None = field(default=None, name="clusterIP")
    cluster_ips: list[str] | None = field(default=None, name="clusterIPs")
    ports: list[ServicePort] | None = None


class ServiceObj(Struct):
    kind: str | None = None
    metadata: Meta | None = None
    spec: ServiceSpec | None = None


class EndpointConditions(Struct):
    ready: bool | None = None


class Endpoint(Struct):
    conditions: EndpointConditions | None = None


class SliceObj(Struct):
    kind: str | None = None
    metadata: Meta | None = None
    endpoints: list[Endpoint] | None = None


# -- deployments and ReplicaSets ------------------------------------------------------------------


class Selector(Struct):
    match_labels: Labels = field(default=None, name="matchLabels")


class DeploymentSpec(Struct):
    replicas: int | None = None
    selector: Selector | None = None
    template: dict[str, Any] | None = None  # hashed whole: any change of it starts a rollout


class WorkloadStatus(Struct):
    available: int | None = field(default=None, name="availableReplicas")
    updated: int | None = field(default=None, name="updatedReplicas")
    conditions: list[Condition] | None = None


class DeploymentObj(Struct):
    kind: str | None = None
    metadata: Meta | None = None
    spec: DeploymentSpec | None = None
    status: WorkloadStatus | None = None


class ReplicaSetSpec(Struct):
    replicas: int | None = None
    selector: Selector | None = None


class ReplicaSetObj(Struct):
    kind: str | None = None
    metadata: Meta | None = None
    spec: ReplicaSetSpec | None = None
    status: WorkloadStatus | None = None


# -- core Events ----------------------------------------------------------------------------------


class Involved(Struct):
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    field_path: str | None = field(default=None, name="fieldPath")


class EventSource(Struct):
    host: str | None = None


class EventObj(Struct):
    kind: str | None = None
    metadata: Meta | None = None
    involved: Involved | None = field(default=None, name="involvedObject")
    regarding: Involved | None = None
    reason: str | None = None
    type: str | None = None
    message: str | None = None
    count: int | None = None
    source: EventSource | None = None
    reporting_instance: str | None = field(default=None, name="reportingInstance")
    last_timestamp: str | None = field(default=None, name="lastTimestamp")
    event_time: str | None = field(default=None, name="eventTime")


AnyObj = PodObj | NodeObj | ServiceObj | SliceObj | DeploymentObj | ReplicaSetObj | EventObj
OBJECTS: dict[str, type[AnyObj]] = {
    "pods": PodObj, "nodes": NodeObj, "services": ServiceObj, "endpointslices": SliceObj,
    "deployments": DeploymentObj, "replicasets": ReplicaSetObj, "events": EventObj,
}  # fmt: skip

# -- envelopes ------------------------------------------------------------------------------------

T = TypeVar("T")


class WatchEvent(Struct, Generic[T]):
    """One line of a watch stream, its object decoded as the resource's Struct."""

    type: str
    object: T


class ListBody(Struct, Generic[T]):
    """A list response (one page)."""

    items: list[T]
    metadata: ListMeta | None = None


class RawWatchEvent(Struct):
    """The fallback when the typed decode fails: the object kept as raw JSON."""

    type: str
    object: msgspec.Raw


class RawList(Struct):
    items: list[msgspec.Raw]
    metadata: ListMeta | None = None
