"""Workload incidents: crash_loop (one pod restarting) and deployment_failure (a failed rollout)."""

from __future__ import annotations

import itertools

from tapio_common.model import Event
from tapio_correlator.engine import text
from tapio_correlator.engine.config import EngineConfig
from tapio_correlator.engine.incident import Incident, Verdict

CRASH_LOOP = "crash_loop"
DEPLOYMENT_FAILURE = "deployment_failure"

IMAGE_PULL_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable"}
)
STALL_REASONS = frozenset({"ProgressDeadlineExceeded"})


def max_in_window(times: list[int], window: int) -> int:
    """The most of `times` (sorted) that fit in one window of `window` ns."""
    best = lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] > window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def restarts_seen(events: list[Event]) -> int:
    """How many restarts a series of restart events of one pod shows.

    The number of events, or more when the pod's restart counter went up by more (restarts the
    collector did not report one by one): counters 3, 6 are four restarts (3, 4, 5, 6).
    """
    counts = [e.k8s.restart_count for e in events if e.k8s is not None and e.k8s.restart_count > 0]
    by_counter = 0
    if len(counts) >= 2 and all(b > a for a, b in itertools.pairwise(counts)):
        by_counter = counts[-1] - counts[0] + 1
    return max(len(events), by_counter)


class CrashIncident(Incident):
    """One pod restarting >= crash_min_restarts times in crash_window (exit code != 0, not OOM)."""

    family = "crash"
    service_priority = 2

    __slots__ = ("exit_codes", "last_restart", "pod_uid", "restart_events", "restarts")

    def __init__(self, restarts: list[Event], pod_uid: str, window: int, cap: int) -> None:
        super().__init__(restarts[0], restarts[-1].time + window)
        self.pod_uid = pod_uid
        self.restarts: list[int] = []
        self.last_restart = restarts[0].time
        self.restart_events: list[Event] = []
        self.exit_codes: set[int] = set()
        for ev in restarts:
            self.restart(ev, window, cap)

    def restart(self, ev: Event, window: int, cap: int) -> None:
        if ev is not self.root:
            if self.full(cap):  # still part of it (and keeps it open), no longer listed
                self.overflow += 1
                self.last_restart = max(self.last_restart, ev.time)
                self.extend(ev.time + window)
                return
            if not self.add(ev, "same_pod", cap):
                return
        self.last_restart = max(self.last_restart, ev.time)
        self.restarts.append(ev.time)
        self.restart_events.append(ev)
        if ev.k8s is not None and ev.k8s.exit_code:
            self.exit_codes.add(ev.k8s.exit_code)
        self.extend(ev.time + window)

    def accepts(self, t: int, window: int) -> bool:
        return self.start <= t <= self.last_restart + window

    def _by_counter(self, window: int) -> int:
        """The most restarts any window of restart events shows (counting counter jumps)."""
        evs = sorted(self.restart_events, key=lambda e: e.time)
        best = lo = 0
        for hi, ev in enumerate(evs):
            while ev.time - evs[lo].time > window:
                lo += 1
            best = max(best, restarts_seen(evs[lo : hi + 1]))
        return best

    def verdict(self, cfg: EngineConfig) -> Verdict | None:
        times = sorted(self.restarts)
        n = max(max_in_window(times, cfg.crash_window_ns), self._by_counter(cfg.crash_window_ns))
        if n < cfg.crash_min_restarts:
            return None
        if n >= cfg.crash_high_restarts:
            score = 0.8 + min(0.1, 0.02 * (n - cfg.crash_high_restarts))
        else:
            score = 0.6 + 0.05 * (n - cfg.crash_min_restarts)
        root = self.root
        codes = ", ".join(str(c) for c in sorted(self.exit_codes)) or "unknown"
        ns, pod = root.context.namespace, root.context.pod
        impact = ""
        if self.services:
            impact = f" Service {self.services[0].context.service} lost its ready endpoints."
        summary = (
            f"Crash loop: pod {ns}/{pod} restarted {max(len(times), n)} times in "
            f"{text.duration(times[-1] - times[0])} (exit code {codes}).{impact} "
            f"Check its logs: kubectl logs -n {ns} {pod} --previous"
        )
        workload = ""
        if root.context.workload is not None and root.context.workload.name:
            w = root.context.workload
            workload = f"{ns}/{w.kind}/{w.name}"
        return Verdict(CRASH_LOOP, round(min(score, 0.95), 3), summary, text.scope(root, workload=workload))


class DeployIncident(Incident):
    """A Deployment template change followed by failures of its NEW ReplicaSet's pods."""

    family = "deploy"
    service_priority = 3

    __slots__ = ("failures", "key", "new_pods", "old_rs", "stalled", "strong")

    def __init__(self, root: Event, key: str, old_rs: frozenset[str], window: int) -> None:
        super().__init__(root, root.time + window)
        self.key = key
        self.old_rs = old_rs
        self.failures = 0
        self.strong = False  # crash loop, image pull failure or repeated failures
        self.stalled: Event | None = None  # a status with available < desired
        self.new_pods: set[str] = set()

    def is_new_pod(self, rs: str, pod_seen: int) -> bool:
        """A pod of the new ReplicaSet: its RS was not known before the update."""
        if rs:
            return rs not in self.old_rs
        return pod_seen >= self.root.time

    def accepts(self, t: int, window: int) -> bool:
        return self.start <= t <= self.root.time + window

    def failure(self, ev: Event, pod_name: str) -> None:
        self.failures += 1
        self.new_pods.add(pod_name)
        k = ev.k8s
        if (
            ev.action == "crash_loop"
            or self.failures >= 2
            or (
                k is not None
                and (k.reason in IMAGE_PULL_REASONS or k.termination_reason in IMAGE_PULL_REASONS)
            )
        ):
            self.strong = True

    def verdict(self, cfg: EngineConfig) -> Verdict | None:
        # The rollout must be failing: new pods fail AND the Deployment reports fewer available
        # than desired (or ProgressDeadlineExceeded); then a single readiness failure is enough.
        if not self.failures or self.stalled is None:
            return None
        score = 0.8 + (0.1 if self.strong else 0.0)
        root = self.root
        ns, name = root.context.namespace, (root.k8s.name if root.k8s is not None else "")
        image = root.attributes.get("image", "")
        change = f"changed its pod template (image {image})" if image else "changed its pod template"
        status = ""
        if self.stalled is not None and self.stalled.k8s is not None:
            s = self.stalled.k8s
            status = f"; {s.available_replicas}/{s.desired_replicas} available"
            if s.reason:
                status += f" ({s.reason})"
        summary = (
            f"Failed rollout: Deployment {ns}/{name} {change}, then "
            f"{text.plural(len(self.new_pods), 'pod')} of the new ReplicaSet failed "
            f"({text.plural(self.failures, 'failure')}: {text.listing(self.new_pods)}){status}. "
            f"Roll back with: kubectl rollout undo -n {ns} deployment/{name}"
        )
        return Verdict(
            DEPLOYMENT_FAILURE,
            round(min(score, 0.95), 3),
            summary,
            text.scope(root, workload=f"{ns}/Deployment/{name}"),
        )
