"""service_dependency_failure: a Service went down, then pods of OTHER workloads that call it failed.

The incident is rooted at the Service's first impact (`services` `unhealthy`, or `endpoints` with
0 ready) when no earlier cause explains it; callers join it as `depends_on` members. Confidence:
high when kernel connection evidence (a reset, a failed or slow connect toward the Service's
cluster IP or one of its pods' IPs) links at least one caller to it, medium when only timing
links them inside the Service's namespace. When the Service's loss belongs to another incident
(an OOM cascade, say), the callers join that incident instead (see `dependencies.Dependencies`).
"""

from __future__ import annotations

from tapio_common.model import Event
from tapio_correlator.engine import text
from tapio_correlator.engine.config import EngineConfig
from tapio_correlator.engine.incident import Incident, Verdict

SERVICE_DEPENDENCY_FAILURE = "service_dependency_failure"


class DependencyIncident(Incident):
    """A Service's impact and the failures of the pods of other workloads that depend on it."""

    family = "dependency"
    service_priority = 0

    __slots__ = ("callers", "connected", "service")

    def __init__(self, root: Event, service: str, window: int) -> None:
        super().__init__(root, root.time + window)
        self.service = service  # "namespace/name"
        self.callers: dict[str, str] = {}  # caller workload -> one failed pod ("namespace/name")
        self.connected: set[str] = set()  # caller workloads with connection evidence

    def verdict(self, cfg: EngineConfig) -> Verdict | None:
        if not self.callers:
            return None
        strong = bool(self.connected & self.callers.keys())
        score = 0.85 + (0.05 if len(self.connected) >= 2 else 0.0) if strong else 0.6
        workloads = text.listing(text.workload_name(w) for w in self.callers)
        how = (
            "that connect to it (kernel connection evidence)"
            if strong
            else "in its namespace (timing only, no connection evidence)"
        )
        summary = (
            f"Service dependency failure: Service {self.service} lost its ready endpoints, then pods "
            f"of {text.plural(len(self.callers), 'workload')} {how} failed within "
            f"{text.duration(self.last_time - self.root.time)}: {workloads} "
            f"({text.listing(self.callers.values())}). Fix {self.service} first; its callers follow."
        )
        ns, _, name = self.service.partition("/")
        return Verdict(SERVICE_DEPENDENCY_FAILURE, score, summary, text.scope(self.root, ns, "", name))
