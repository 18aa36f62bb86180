"""The families whose scenarios expect correlations, by name (shared by the registry and mixed)."""

from __future__ import annotations

from tapio_scenariogen.families import cascade, crash, dependency, deploy, network, node, perf, pressure
from tapio_scenariogen.families.common import Builder

POSITIVE: dict[str, dict[str, Builder]] = {
    "cascading_failure": cascade.VARIANTS,
    "node_failure": node.VARIANTS,
    "crash_loop": crash.VARIANTS,
    "resource_pressure": pressure.VARIANTS,
    "network_degradation": network.VARIANTS,
    "performance_degradation": perf.VARIANTS,
    "deployment_failure": deploy.VARIANTS,
    "service_dependency_failure": dependency.VARIANTS,
}
