"""Node incidents: resource_pressure (pressure condition -> evictions) and network_degradation (CNI)."""

from __future__ import annotations

from tapio_common.model import Event
from tapio_correlator.engine import text
from tapio_correlator.engine.config import EngineConfig
from tapio_correlator.engine.incident import Incident, Verdict

RESOURCE_PRESSURE = "resource_pressure"
NETWORK_DEGRADATION = "network_degradation"
PRESSURE_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure")
LOSS_ACTIONS = frozenset({"packet_loss", "errors"})


class PressureIncident(Incident):
    """A node pressure condition turning True, then pods on that node evicted."""

    family = "pressure"
    service_priority = 1

    __slots__ = ("conditions", "evicted", "node")

    def __init__(self, root: Event, node: str, conditions: list[str], window: int) -> None:
        super().__init__(root, root.time + window)
        self.node = node
        self.conditions = conditions
        self.evicted: list[str] = []

    def accepts(self, t: int, window: int) -> bool:
        return self.start <= t <= self.root.time + window

    def potential_at_close(self) -> bool:
        return True  # "a pressure condition with no eviction is only potential_issue"

    def verdict(self, cfg: EngineConfig) -> Verdict | None:
        if not self.evicted:
            return None
        n = len(self.evicted)
        score = 0.8 + (0.05 if n >= 2 else 0.0)
        cond = "/".join(self.conditions)
        summary = (
            f"Resource pressure: node {self.node} reported {cond} and "
            f"{text.plural(n, 'pod')} on it were evicted within "
            f"{text.duration(self.last_time - self.root.time)} ({text.listing(self.evicted)}). "
            f"Free resources on {self.node} or lower what its pods request."
        )
        return Verdict(RESOURCE_PRESSURE, score, summary, text.scope(self.root, node=self.node))


def is_loss(ev: Event, cfg: EngineConfig) -> bool:
    """A CNI packet_loss/errors finding over the thresholds (loss ratio, drops or errors)."""
    n = ev.network
    if n is None or ev.action not in LOSS_ACTIONS:
        return False
    return n.loss_ratio >= cfg.loss_ratio_threshold or max(n.drops, n.errors) >= cfg.drop_threshold


class NetworkIncident(Incident):
    """CNI loss on a node's interface, then TCP retransmits/resets from pods on that node."""

    family = "network"
    service_priority = 0

    __slots__ = ("anchor", "node", "pods", "retransmits")

    def __init__(self, root: Event, node: str, window: int) -> None:
        super().__init__(root, root.time + window)
        self.node = node
        self.anchor = root.time
        self.retransmits = 0
        self.pods: set[str] = set()

    def accepts(self, t: int, window: int) -> bool:
        return self.start <= t <= self.anchor + window

    def potential_at_close(self) -> bool:
        return False  # already published as a low network_degradation

    def verdict(self, cfg: EngineConfig) -> Verdict | None:
        root = self.root
        n = root.network
        iface = n.interface if n is not None else "?"
        if n is not None and n.errors and not n.drops:
            what = f"{n.errors} errors"
        else:
            what = f"{(n.loss_ratio if n is not None else 0.0) * 100:.1f} % packet loss"
        where = f"{iface} on node {self.node}"
        if self.retransmits >= cfg.retransmit_threshold:
            score = 0.8 + (0.05 if len(self.pods) >= 2 else 0.0)
            summary = (
                f"Network degradation: {where} reported {what}, then pods on the node "
                f"({text.listing(self.pods)}) retransmitted {self.retransmits} TCP segments within "
                f"{text.duration(self.last_time - root.time)}. Check the NIC, CNI plugin and "
                f"network path of {self.node}."
            )
            return Verdict(NETWORK_DEGRADATION, score, summary, text.scope(root, node=self.node))
        summary = (
            f"Packet loss: {where} reported {what}; pods on the node show "
            f"{self.retransmits} retransmits so far (below {cfg.retransmit_threshold})."
        )
        return Verdict(NETWORK_DEGRADATION, 0.3, summary, text.scope(root, node=self.node))
