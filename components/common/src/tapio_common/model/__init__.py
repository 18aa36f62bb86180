"""Frozen attrs models of the wire contract (events, correlations, alerts)."""

from tapio_common.model.alerts import Alert, AlertState
from tapio_common.model.correlations import Confidence, Correlation, Evidence
from tapio_common.model.events import (
    Context,
    Event,
    EventBatch,
    K8sEvent,
    KernelEvent,
    NetworkEvent,
    ObjectRef,
    OwnerRef,
    ServicePort,
    Severity,
    Source,
    SystemdEvent,
    Workload,
)

__all__ = [
    "Alert",
    "AlertState",
    "Confidence",
    "Context",
    "Correlation",
    "Event",
    "EventBatch",
    "Evidence",
    "K8sEvent",
    "KernelEvent",
    "NetworkEvent",
    "ObjectRef",
    "OwnerRef",
    "ServicePort",
    "Severity",
    "Source",
    "SystemdEvent",
    "Workload",
]
