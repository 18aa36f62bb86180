"""Generates one correlation scenario (events + expected correlations) of a family, deterministically.

How CORRELATION.md was read where it leaves room (the engine is judged by the same reading):

1. Service impact = a `services` `unhealthy` event, or an `endpoints` `updated` event whose
   `ready_endpoints` is 0.
2. Medium cascade ("Service link missing but >= 2 workloads failed"): scenarios make pods of two
   workloads OTHER than the cause's own fail, so it holds whether or not the cause's workload counts.
3. A node `not_ready` with no unit failure before it is a cascade cause (node_failure needs the unit
   failure as its root): cascading_failure, high with a Service impact, medium with >= 2 workloads.
   A node-critical unit whose chain reaches a Service is a cascading_failure rooted at the unit
   (precedence); units that are not node-critical (systemd-resolved, kube-proxy, ...) can start a
   cascade by breaking the pods of their node.
4. The kernel `oom_kill`, the pod's `oom_killed` and its OOMKilled restart, seconds apart, are ONE
   kill; the root is the earliest (the kernel event when there is one, as in public cascade-00).
   "Repeated OOM" means >= 2 distinct kills. Three OOMKilled restarts within 10 minutes always hold
   two within 5 minutes, so "OOMKilled restarts are not a crash loop" is tested as a
   resource_pressure (repeated OOM) expectation with no crash_loop, never as an empty near-miss.
5. Node pressure = a `nodes` `updated` event whose `conditions` has MemoryPressure/DiskPressure/
   PIDPressure "True" (the contract gives no action for it).
6. The retransmit count is the SUM of `kernel.count` of tcp_retransmit/tcp_reset events from pods on
   the node within 2 minutes after the CNI event; positives sometimes carry it in one event, sometimes
   in several smaller ones; near-misses keep the sum below 50.
7. Slow connects are `tcp_connect_latency`/`high_latency` events with `kernel.latency_ns`, attributed
   to the workload through the event's pod ("from" its pods: events carry no pod-IP mapping for
   "toward"). Sub-threshold near-misses use the same action with 90-190 ms.
8. An image pull failure is a `pods` `unhealthy` event with reason ErrImagePull/ImagePullBackOff;
   "available < desired" comes from a `deployments` `updated` status event (ProgressDeadlineExceeded,
   sometimes MinimumReplicasUnavailable), a key event as in public deploy-00.
9. A crash loop of an OLD ReplicaSet's pod during a rollout is no deployment_failure, but it still is
   a crash_loop (expected as such): CORRELATION.md's crash_loop rule applies to it.
10. Windows: positives keep every linked event inside the window counted from the root cause AND from
   the previous step; near-misses put the link 5-40 % beyond the window from the latest earlier event.
11. Low-confidence results (potential_issue, a lone CNI loss) are never expected: they cost nothing.
   Key events are only the events that clearly take part (cause, failures, impact, rollout status),
   never lifecycle events (pod created, replacement pods, recovery).
"""

from __future__ import annotations

import random

import attrs

from tapio_common.model import Event
from tapio_scenariogen.errors import ScenarioError
from tapio_scenariogen.families import FAMILIES, QUIET_FAMILIES
from tapio_scenariogen.noise import add_noise
from tapio_scenariogen.world import Expected, World

_EPOCH_2025 = 1_735_689_600  # 2025-01-01T00:00:00Z


@attrs.frozen
class Scenario:
    """A generated scenario: events in time order and the correlations the engine must report."""

    family: str
    variant: str
    seed: int
    description: str
    events: tuple[Event, ...]
    expected: tuple[Expected, ...]

    @property
    def name(self) -> str:
        """`<family>-<variant>-<seed>`: the scenario's directory name."""
        return f"{self.family}-{self.variant}-{self.seed}"

    @property
    def quiet(self) -> bool:
        """Whether no medium/high correlation may be reported for it."""
        return self.family in QUIET_FAMILIES


def variants(family: str) -> list[str]:
    """The variants of a family, sorted."""
    if family not in FAMILIES:
        raise ScenarioError(f"unknown family {family!r} (known: {', '.join(sorted(FAMILIES))})")
    return sorted(FAMILIES[family])


def generate(family: str, seed: int, variant: str | None = None) -> Scenario:
    """One scenario of `family`; the variant is drawn from the seed unless given.

    The same (family, seed) always gives the same scenario, and generate(f, s) equals
    generate(f, s, v) for the variant v it drew.
    """
    names = variants(family)
    rng = random.Random(f"{family}:{seed}")
    drawn = rng.choice(names)
    chosen = drawn if variant is None else variant
    if chosen not in FAMILIES[family]:
        raise ScenarioError(f"unknown variant {chosen!r} of {family} (known: {', '.join(names)})")
    builder = FAMILIES[family][chosen]
    base_ns = (_EPOCH_2025 + rng.randrange(0, 3 * 365) * 86_400 + rng.randrange(0, 24 * 60) * 60) * 10**9
    world = World.create(
        rng,
        base_ns,
        n_nodes=rng.randint(3, 6),
        n_namespaces=rng.randint(2, 4),
        n_deployments=rng.randint(4, 8),
    )
    world.noise_scale = rng.uniform(0.5, 2.0)
    t0 = rng.uniform(120, 300)
    end = builder(world, t0)
    setup_end = world.emit_setup(limit=min(world.incident_starts, default=t0) - 15)
    add_noise(world, setup_end + rng.uniform(3, 15), end + rng.uniform(120, 330), world.noise_scale)
    doc = (builder.__doc__ or "").strip().splitlines()
    return Scenario(
        family=family,
        variant=chosen,
        seed=seed,
        description=(doc[0] if doc else f"{family} {chosen}")
        + (f" [{', '.join(world.notes)}]" if world.notes else ""),
        events=tuple(world.emit.events()),
        expected=tuple(world.expected),
    )
