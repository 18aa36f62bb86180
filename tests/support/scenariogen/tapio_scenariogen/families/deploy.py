"""deployment_failure: template change -> new ReplicaSet's pods crash/unhealthy -> available < desired."""

from __future__ import annotations

from tapio_common.model import Event, Severity
from tapio_scenariogen import names
from tapio_scenariogen.cluster import Deployment, Pod, ReplicaSet
from tapio_scenariogen.families.common import CRASH_EXIT_CODES, Builder, restart_series, restart_times
from tapio_scenariogen.world import DEPLOY_WINDOW, World


def rollout_start(w: World, t0: float, dep: Deployment) -> tuple[Event, ReplicaSet]:
    """The Deployment's template changes (new image); its new ReplicaSet (sometimes announced)."""
    new_image = names.next_image(w.rng, dep.image)
    update = w.emit.deployment_updated(t0, dep, new_image)
    rs = ReplicaSet(f"{dep.name}-{names.template_hash(w.rng)}", names.uuid_like(w.rng))
    if w.rng.random() < 0.4:
        w.emit.replicaset_created(t0 + w.jitter(0.05, 0.5), dep, rs)
    return update, rs


def new_pod(w: World, t: float, dep: Deployment, rs: ReplicaSet) -> Pod:
    free = [n for n in w.cluster.nodes if w.cluster.node_is_free(n)]
    nodes = sorted(dep.nodes) if w.rng.random() < 0.6 or not free else free
    pod = w.cluster.new_pod(dep, rs, w.rng.choice(nodes), started=w.rng.random() < 0.5)
    w.emit.pod_created(t, pod, short=w.rng.random() < 0.5)
    w.cluster.reserved_nodes.add(pod.node)
    return pod


def failing_pod(w: World, t: float, pod: Pod, mode: str, restarts: int) -> list[Event]:
    """The failures of one new pod: restarts then crash_loop, readiness failures, or image pull errors."""
    if mode == "crash_loop":
        times = restart_times(w, t, restarts, 150.0, gap=(10.0, 45.0))
        sev = Severity.ERROR if w.rng.random() < 0.5 else Severity.WARNING
        return restart_series(
            w, pod, times, w.rng.choice(CRASH_EXIT_CODES), 2, sev, verbose=w.rng.random() < 0.5
        )
    if mode == "unhealthy":
        return [w.emit.pod_unhealthy(t + i * w.jitter(10, 30), pod) for i in range(w.rng.randint(1, 3))]
    image_ref = f"{pod.app}:broken"
    return [
        w.emit.pod_unhealthy(t, pod, "ErrImagePull", f'Failed to pull image "{image_ref}": not found'),
        w.emit.pod_unhealthy(
            t + w.jitter(10, 30), pod, "ImagePullBackOff", f'Back-off pulling image "{image_ref}"'
        ),
    ]


def failed_rollout(w: World, t0: float, mode: str, restarts: tuple[int, int]) -> tuple[list[Event], float]:
    """Update, 1-2 new pods failing, then a status with available < desired; all inside the window."""
    dep = w.workload(min_replicas=2, max_replicas=4)
    update, rs = rollout_start(w, t0, dep)
    events = [update]
    t = t0 + w.jitter(2, 40)
    new_pods: list[Pod] = []
    for _ in range(w.rng.choice((1, 1, 2))):
        pod = new_pod(w, t, dep, rs)
        new_pods.append(pod)
        fails = failing_pod(w, t + w.jitter(5, 30), pod, mode, w.rng.randint(*restarts))
        events += fails
        t = w.at(fails[-1]) + w.jitter(3, 15)
    available = dep.replicas - 1
    if w.rng.random() < 0.5:
        gone = w.rng.choice(dep.pods)
        w.emit.pod_deleted(t, gone)
        w.kill([gone])
        t += w.jitter(1, 10)
    reason = "ProgressDeadlineExceeded" if w.rng.random() < 0.8 else "MinimumReplicasUnavailable"
    t = min(t, t0 + DEPLOY_WINDOW - 40)
    events.append(w.emit.deployment_status(t, dep, available, reason))
    w.guard(dep.nodes | {p.node for p in new_pods}, [*dep.pods, *new_pods], t0, t)
    w.kill(new_pods)
    return events, t


def crash_loop(w: World, t0: float) -> float:
    """Image change -> the new ReplicaSet's pods crash-loop -> rollout stalls (high)."""
    events, end = failed_rollout(w, t0, "crash_loop", (2, 4))
    w.expect("deployment_failure", events[0], events, "high")
    return end


def unhealthy(w: World, t0: float) -> float:
    """Image change -> the new ReplicaSet's pods never get ready -> rollout stalls (high)."""
    events, end = failed_rollout(w, t0, "unhealthy", (1, 1))
    w.expect("deployment_failure", events[0], events, "high")
    return end


def image_pull(w: World, t0: float) -> float:
    """Image change to a missing image -> ErrImagePull/ImagePullBackOff -> rollout stalls (high)."""
    events, end = failed_rollout(w, t0, "image_pull", (1, 1))
    w.expect("deployment_failure", events[0], events, "high")
    return end


VARIANTS: dict[str, Builder] = {"crash_loop": crash_loop, "unhealthy": unhealthy, "image_pull": image_pull}
