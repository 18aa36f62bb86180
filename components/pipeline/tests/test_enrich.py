"""Enrichment from what the pod events taught: by container id, cgroup id, pod uid and name; bounded."""

from __future__ import annotations

from tapio.events.v1 import events_pb2
from tapio_common.model.convert import event_from_json, event_to_proto
from tapio_common.scenarios import load_scenarios
from tapio_pipeline.enrich import PodIndex


def pod_event(uid: str, name: str, *, node: str = "node-1", cids: tuple[str, ...] = ()) -> events_pb2.Event:
    return events_pb2.Event(
        id=f"pod-{uid}",
        source=events_pb2.SOURCE_K8S,
        type="pods",
        action="created",
        context=events_pb2.Context(
            namespace="shop",
            pod=name,
            pod_uid=uid,
            node=node,
            labels={"app": "cart"},
            workload=events_pb2.Workload(kind="Deployment", name="cart"),
            owners=[
                events_pb2.OwnerRef(kind="ReplicaSet", name="cart-7d9f", uid="rs-1"),
                events_pb2.OwnerRef(kind="Deployment", name="cart", uid="dep-1"),
            ],
        ),
        k8s=events_pb2.K8sEvent(kind="Pod", name=name, uid=uid, container_ids=list(cids)),
    )


def kernel_event(**ctx: object) -> events_pb2.Event:
    return events_pb2.Event(
        id="k-1",
        source=events_pb2.SOURCE_EBPF,
        type="oom_kill",
        context=events_pb2.Context(**ctx),  # type: ignore[arg-type]
        kernel=events_pb2.KernelEvent(pid=4242, comm="java"),
    )


def test_kernel_event_by_container_id_gets_the_pod() -> None:
    index = PodIndex()
    index.learn(pod_event("u-1", "cart-7d9f-abcde", cids=("containerd://0123abcd",)))
    e = kernel_event(container_id="0123abcd", pid=4242, comm="java", node="node-1")
    assert index.enrich(e)
    c = e.context
    assert (c.namespace, c.pod, c.pod_uid, c.workload.name) == ("shop", "cart-7d9f-abcde", "u-1", "cart")
    assert [o.kind for o in c.owners] == ["ReplicaSet", "Deployment"]
    assert dict(c.labels) == {"app": "cart"}
    assert (c.pid, c.comm, c.container_id) == (4242, "java", "0123abcd")  # its own fields kept
    assert not index.enrich(e)  # nothing more to add


def test_cgroup_learnt_from_one_event_serves_the_next() -> None:
    index = PodIndex()
    index.learn(pod_event("u-1", "cart-1", cids=("cid-1",)))
    index.learn(kernel_event(cgroup_id=991, container_id="cid-1"))
    e = kernel_event(cgroup_id=991)
    assert index.enrich(e)
    assert e.context.pod == "cart-1"


def test_event_own_fields_win_and_unknown_pods_are_left_alone() -> None:
    index = PodIndex()
    index.learn(pod_event("u-1", "cart-1", node="node-1", cids=("cid-1",)))
    e = kernel_event(container_id="cid-1", node="node-9")
    index.enrich(e)
    assert e.context.node == "node-9"
    stranger = kernel_event(container_id="nobody")
    assert not index.enrich(stranger)
    assert stranger.context == events_pb2.Context(container_id="nobody")


def test_bounded_least_recently_seen_pod_forgotten() -> None:
    index = PodIndex(max_pods=2)
    for i in range(3):
        index.learn(pod_event(f"u-{i}", f"p-{i}", cids=(f"c-{i}",)))
    assert len(index) == 2
    assert index.evicted == 1
    assert not index.enrich(kernel_event(container_id="c-0"))
    assert index.enrich(kernel_event(container_id="c-2"))


def test_snapshot_restores_the_same_answers() -> None:
    index = PodIndex()
    index.learn(pod_event("u-1", "cart-1", cids=("cid-1",)))
    index.learn(kernel_event(cgroup_id=7, container_id="cid-1"))
    again = PodIndex.restore(index.state())
    e = kernel_event(cgroup_id=7)
    assert again.enrich(e)
    assert e.context.pod_uid == "u-1"


def test_public_scenarios_kernel_events_meet_their_pods() -> None:
    """Every kernel event of the public scenarios that names a pod known from pod events gets its workload."""
    enriched = 0
    for scenario in load_scenarios():
        index = PodIndex()
        for line in scenario.lines:
            e = event_to_proto(event_from_json(line))
            index.learn(e)
            known = index.pod_of(e.context)
            if (
                e.source == events_pb2.SOURCE_EBPF
                and e.context.pod
                and known is not None
                and not e.context.workload.name
            ):
                assert index.enrich(e)
                assert e.context.workload.name
                assert e.context.pod_uid
                enriched += 1
    assert enriched > 0
