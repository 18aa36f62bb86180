"""Builds and records Kubernetes events shaped like the k8s collector's (see the public scenarios)."""

from __future__ import annotations

import random
from typing import Any

import attrs

from tapio_common.model import (
    Context,
    Event,
    K8sEvent,
    KernelEvent,
    NetworkEvent,
    OwnerRef,
    ServicePort,
    Severity,
    Source,
    SystemdEvent,
    Workload,
)
from tapio_scenariogen import names
from tapio_scenariogen.cluster import Deployment, Pod, ReplicaSet, Service

CLUSTER_NS = "_cluster"


@attrs.define
class Recorder:
    """Holds the events of one scenario; times are seconds after the scenario start."""

    rng: random.Random
    cluster: str
    base_ns: int
    records: list[tuple[float, int, Event]] = attrs.field(factory=list)

    def record(
        self,
        t: float,
        source: Source,
        type_: str,
        action: str,
        severity: Severity,
        message: str,
        context: Context,
        *,
        k8s: K8sEvent | None = None,
        systemd: SystemdEvent | None = None,
        kernel: KernelEvent | None = None,
        network: NetworkEvent | None = None,
        attributes: dict[str, str] | None = None,
    ) -> Event:
        """Creates the event at `t` seconds with a fresh random id and keeps it."""
        event = Event(
            id=names.uuid_like(self.rng),
            time=self.base_ns + round(t * 1_000_000) * 1000,
            source=source,
            type=type_,
            action=action,
            severity=severity,
            message=message,
            context=context,
            k8s=k8s,
            systemd=systemd,
            kernel=kernel,
            network=network,
            attributes=attributes or {},
        )
        self.records.append((t, len(self.records), event))
        return event

    def events(self) -> list[Event]:
        """Every recorded event in time order (ties keep the order they were recorded in)."""
        return [e for _, _, e in sorted(self.records, key=lambda r: (r[0], r[1]))]


def owner_refs(*refs: OwnerRef) -> Any:
    """Owners for Context(owners=...): typed Any because mypy's attrs plugin cannot type converter=tuple."""
    return refs


def pod_context(cluster: str, pod: Pod, with_container_id: bool = True) -> Context:
    return Context(
        cluster=cluster,
        namespace=pod.namespace,
        pod=pod.name,
        pod_uid=pod.uid,
        node=pod.node,
        container=pod.app,
        container_id=pod.container_id if with_container_id else "",
        labels=pod.labels,
        workload=Workload("Deployment", pod.app),
        owners=owner_refs(
            OwnerRef("ReplicaSet", pod.rs.name, pod.rs.uid),
            OwnerRef("Deployment", pod.app, pod.deployment_uid),
        ),
    )


@attrs.define
class K8sEmitter(Recorder):
    """Kubernetes objects and their semantic state changes."""

    def _k8s(
        self,
        t: float,
        type_: str,
        action: str,
        sev: Severity,
        msg: str,
        ctx: Context,
        k8s: K8sEvent,
        attributes: dict[str, str] | None = None,
    ) -> Event:
        return self.record(t, Source.K8S, type_, action, sev, msg, ctx, k8s=k8s, attributes=attributes)

    def _pod(self, t: float, pod: Pod, action: str, sev: Severity, msg: str, **k8s: Any) -> Event:
        ctx = pod_context(self.cluster, pod, with_container_id=bool(pod.container_id))
        payload = attrs.evolve(K8sEvent(kind="Pod", name=pod.name, uid=pod.uid), **k8s)
        return self._k8s(t, "pods", action, sev, msg, ctx, payload)

    # --- objects appearing ----------------------------------------------------------------

    def _deployment(
        self,
        t: float,
        dep: Deployment,
        action: str,
        sev: Severity,
        msg: str,
        attributes: dict[str, str] | None = None,
        **k8s: Any,
    ) -> Event:
        ctx = Context(
            cluster=self.cluster, namespace=dep.namespace, workload=Workload("Deployment", dep.name)
        )
        payload = attrs.evolve(K8sEvent(kind="Deployment", name=dep.name, uid=dep.uid), **k8s)
        return self._k8s(t, "deployments", action, sev, msg, ctx, payload, attributes)

    def deployment_created(self, t: float, dep: Deployment) -> Event:
        return self._deployment(
            t,
            dep,
            "created",
            Severity.INFO,
            f"deployment {dep.namespace}/{dep.name} created",
            desired_replicas=dep.replicas,
            available_replicas=dep.replicas,
            selector=dep.labels,
        )

    def pod_created(self, t: float, pod: Pod, short: bool = False) -> Event:
        msg = "pod created" if short else f"pod {pod.namespace}/{pod.name} created"
        return self._pod(
            t, pod, "created", Severity.INFO, msg, phase="Pending", restart_count=0, pod_ips=(pod.ip,)
        )

    def pod_ready(self, t: float, pod: Pod) -> Event:
        return self._pod(
            t,
            pod,
            "ready",
            Severity.INFO,
            f"pod {pod.namespace}/{pod.name} ready",
            phase="Running",
            ready=True,
            restart_count=0,
            pod_ips=(pod.ip,),
        )

    def service_created(self, t: float, svc: Service, ready: int) -> Event:
        ctx = Context(cluster=self.cluster, namespace=svc.namespace, service=svc.name)
        k8s = K8sEvent(
            kind="Service",
            name=svc.name,
            uid=svc.uid,
            selector=svc.selector,
            ready_endpoints=ready,
            cluster_ips=(svc.cluster_ip,),
            ports=(ServicePort("http", 80, "TCP", "8080"),),
        )
        return self._k8s(
            t, "services", "created", Severity.INFO, f"service {svc.namespace}/{svc.name} created", ctx, k8s
        )

    def node_created(self, t: float, node: str) -> Event:
        ctx = Context(cluster=self.cluster, namespace=CLUSTER_NS, node=node)
        conditions = {
            "Ready": "True",
            "MemoryPressure": "False",
            "DiskPressure": "False",
            "PIDPressure": "False",
        }
        k8s = K8sEvent(kind="Node", name=node, uid=names.uuid_like(self.rng), conditions=conditions)
        return self._k8s(t, "nodes", "created", Severity.INFO, f"node {node} registered", ctx, k8s)

    # --- normal lifecycle -----------------------------------------------------------------

    def pod_updated(self, t: float, pod: Pod) -> Event:
        return self._pod(
            t,
            pod,
            "updated",
            Severity.INFO,
            "pod status updated",
            ready=True,
            phase="Running",
            pod_ips=(pod.ip,),
        )

    def pod_deleted(self, t: float, pod: Pod) -> Event:
        return self._pod(
            t, pod, "deleted", Severity.INFO, f"pod {pod.namespace}/{pod.name} deleted", phase="Succeeded"
        )

    def deployment_scaled(self, t: float, dep: Deployment, desired: int, available: int) -> Event:
        return self._deployment(
            t,
            dep,
            "scaled",
            Severity.INFO,
            f"deployment {dep.namespace}/{dep.name} scaled to {desired}",
            desired_replicas=desired,
            available_replicas=available,
            selector=dep.labels,
            reason="ScalingReplicaSet",
        )

    def endpoints_updated(self, t: float, svc: Service, ready: int) -> Event:
        ctx = Context(cluster=self.cluster, namespace=svc.namespace, service=svc.name)
        k8s = K8sEvent(kind="Endpoints", name=svc.name, uid=svc.uid, ready_endpoints=ready)
        sev = Severity.INFO if ready else Severity.WARNING
        msg = (
            f"endpoints {svc.namespace}/{svc.name}: {ready} ready addresses"
            if ready
            else f"endpoints {svc.namespace}/{svc.name} have no ready addresses"
        )
        return self._k8s(t, "endpoints", "updated", sev, msg, ctx, k8s)

    def deployment_updated(self, t: float, dep: Deployment, new_image: str) -> Event:
        """A template change (new image): a rollout starts."""
        return self._deployment(
            t,
            dep,
            "updated",
            Severity.INFO,
            f"deployment {dep.namespace}/{dep.name} image changed",
            {"image": new_image},
            desired_replicas=dep.replicas,
            available_replicas=dep.replicas,
            selector=dep.labels,
            reason="TemplateChanged",
        )

    def deployment_status(self, t: float, dep: Deployment, available: int, reason: str) -> Event:
        """A rollout status: stalled (available < desired) or complete."""
        stalled = available < dep.replicas
        if reason == "ProgressDeadlineExceeded":
            msg = "deployment progress stalled"
        else:
            msg = (
                "deployment does not have minimum availability" if stalled else "deployment rollout complete"
            )
        sev = Severity.WARNING if stalled else Severity.INFO
        return self._deployment(
            t,
            dep,
            "updated",
            sev,
            msg,
            desired_replicas=dep.replicas,
            available_replicas=available,
            reason=reason,
        )

    def node_ready(self, t: float, node: str) -> Event:
        ctx = Context(cluster=self.cluster, namespace=CLUSTER_NS, node=node)
        k8s = K8sEvent(kind="Node", name=node, conditions={"Ready": "True"}, ready=True)
        return self._k8s(t, "nodes", "ready", Severity.INFO, f"node {node} ready", ctx, k8s)

    def replicaset_created(self, t: float, dep: Deployment, rs: ReplicaSet) -> Event:
        ctx = Context(
            cluster=self.cluster,
            namespace=dep.namespace,
            workload=Workload("Deployment", dep.name),
            owners=owner_refs(OwnerRef("Deployment", dep.name, dep.uid)),
        )
        k8s = K8sEvent(
            kind="ReplicaSet", name=rs.name, uid=rs.uid, desired_replicas=dep.replicas, selector=dep.labels
        )
        return self._k8s(
            t,
            "replicasets",
            "created",
            Severity.INFO,
            f"replicaset {dep.namespace}/{rs.name} created",
            ctx,
            k8s,
        )
