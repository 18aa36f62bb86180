"""Alert severity from a correlation's type and confidence, and the numeric scales of each format."""

from __future__ import annotations

from tapio_common.model import Confidence, Severity

# Severity of a high-confidence correlation of each type; medium confidence is one step lower,
# low confidence two steps lower, never below info (README: "Severity").
BASE_SEVERITY: dict[str, Severity] = {
    "node_failure": Severity.CRITICAL,
    "cascading_failure": Severity.CRITICAL,
    "service_dependency_failure": Severity.ERROR,
    "deployment_failure": Severity.ERROR,
    "crash_loop": Severity.ERROR,
    "resource_pressure": Severity.WARNING,
    "network_degradation": Severity.WARNING,
    "performance_degradation": Severity.WARNING,
    "potential_issue": Severity.INFO,
}
DEFAULT_SEVERITY = Severity.WARNING  # a type this table does not know yet

_LADDER = (Severity.INFO, Severity.WARNING, Severity.ERROR, Severity.CRITICAL)
_STEPS_DOWN = {Confidence.HIGH: 0, Confidence.MEDIUM: 1, Confidence.LOW: 2, Confidence.UNSPECIFIED: 2}


def alert_severity(correlation_type: str, confidence: Confidence) -> Severity:
    """The table above: base severity of the type, lowered by confidence, at least info."""
    base = BASE_SEVERITY.get(correlation_type, DEFAULT_SEVERITY)
    index = _LADDER.index(base) - _STEPS_DOWN[confidence]
    return _LADDER[max(0, index)]


# CEF: 0-3 low, 4-6 medium, 7-8 high, 9-10 very high.
CEF_SEVERITY: dict[Severity, int] = {
    Severity.UNSPECIFIED: 3,
    Severity.DEBUG: 1,
    Severity.INFO: 3,
    Severity.WARNING: 5,
    Severity.ERROR: 7,
    Severity.CRITICAL: 9,
}

# RFC 5424 severity codes: 2 critical, 3 error, 4 warning, 6 informational, 7 debug.
SYSLOG_SEVERITY: dict[Severity, int] = {
    Severity.UNSPECIFIED: 6,
    Severity.DEBUG: 7,
    Severity.INFO: 6,
    Severity.WARNING: 4,
    Severity.ERROR: 3,
    Severity.CRITICAL: 2,
}

# ECS event.severity (numeric; the scale of Elastic Security: 21 low, 47 medium, 73 high, 99 critical).
ECS_SEVERITY: dict[Severity, int] = {
    Severity.UNSPECIFIED: 21,
    Severity.DEBUG: 1,
    Severity.INFO: 21,
    Severity.WARNING: 47,
    Severity.ERROR: 73,
    Severity.CRITICAL: 99,
}
