"""Which open incident takes a pod failure: the named claims of CORRELATION.md's precedence, ranked.

Fed by the routing of pod failures (`routing.Routing.pod_failure`): every open incident that could
explain a failure makes a claim of one of these kinds; the strongest claim takes the failure (ties:
the incident with the earlier root cause, then the one opened first). A failure no incident claims
is tracked (restarts, toward a crash loop) or kept loose for a cause that arrives late.

Read top to bottom: a failure is explained first by what happened to the pod itself (its rollout,
its own crash loop, its own OOM kill), then by its node (pressure eviction, node loss), then by
its workload (an OOM of a sibling pod, slow connects), then by what it depends on (a Service it
connects to went down), and last by weaker links (an OOM of a neighbour on the node).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from tapio_correlator.engine.incident import Incident

# A pod of a Deployment's NEW ReplicaSet fails within the rollout's window (deployment_failure).
NEW_REPLICASET: Final = 47
# The pod restarts again inside its own open crash loop.
OWN_CRASH_LOOP: Final = 45
# The pod itself was OOM killed (its oom_killed/OOMKilled restart, or a failure right after).
OWN_OOM_KILL: Final = 44
# The pod is evicted from a node under Memory/Disk/PID pressure.
PRESSURE_EVICTION: Final = 43
# The pod is lost (not_ready/evicted) with its failed node.
NODE_LOSS: Final = 42
# Another pod of the same workload was OOM killed.
SIBLING_OOM_KILL: Final = 40
# The pod's workload made slow TCP connects just before (readiness failures only).
SLOW_CONNECTS: Final = 40
# The pod connects to a Service that went down (kernel connection evidence toward it).
CONNECTED_DEPENDENCY: Final = 36
# The pod's node failed, and this failure is not a loss (a restart, a readiness failure).
NODE_TROUBLE: Final = 30
# A Service in the pod's namespace went down just before (timing alone).
NAMESPACE_DEPENDENCY: Final = 25
# A pod of another workload on the same node was OOM killed.
NEIGHBOUR_OOM_KILL: Final = 20

# The table above, strongest first (for documentation and tests).
CLAIMS: Final = (
    ("new_replicaset", NEW_REPLICASET),
    ("own_crash_loop", OWN_CRASH_LOOP),
    ("own_oom_kill", OWN_OOM_KILL),
    ("pressure_eviction", PRESSURE_EVICTION),
    ("node_loss", NODE_LOSS),
    ("sibling_oom_kill", SIBLING_OOM_KILL),
    ("slow_connects", SLOW_CONNECTS),
    ("connected_dependency", CONNECTED_DEPENDENCY),
    ("node_trouble", NODE_TROUBLE),
    ("namespace_dependency", NAMESPACE_DEPENDENCY),
    ("neighbour_oom_kill", NEIGHBOUR_OOM_KILL),
)


class Best:
    """The strongest claim on one failure so far."""

    __slots__ = ("incident", "key", "relation")

    def __init__(self) -> None:
        self.incident: Incident | None = None
        self.key: tuple[int, int, int] = (-1, 0, 0)
        self.relation = ""

    def consider(self, inc: Incident, strength: int, relation: str) -> None:
        key = (strength, -inc.root.time, -inc.serial)
        if key > self.key:
            self.incident, self.key, self.relation = inc, key, relation
