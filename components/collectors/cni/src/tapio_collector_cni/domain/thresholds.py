"""When a window's drops or errors are worth an event: the thresholds and the findings they give.

Pure. Defaults follow the correlation rules (network_degradation: loss ratio >= 1 % or >= 100
drops in the window); `min_count` keeps a lone drop on a nearly idle interface (1 of 20 packets
is 5 %) from being reported as loss.
"""

from __future__ import annotations

import attrs

from tapio_collector_cni.domain.tracker import EGRESS, INGRESS, DirectionDelta, Window

PACKET_LOSS = "packet_loss"
ERRORS = "errors"


@attrs.frozen
class Thresholds:
    """A direction of an interface is reported when, over one window,
    drops >= `drops`, or drops >= `min_count` and drops / offered >= `loss_ratio`
    (`packet_loss`); likewise errors with `errors` and the same ratio (`errors`)."""

    loss_ratio: float = 0.01
    drops: int = 100
    errors: int = 100
    min_count: int = 10


@attrs.frozen(slots=True)
class Finding:
    window: Window
    direction: str
    action: str  # packet_loss | errors
    delta: DirectionDelta
    ratio: float

    @property
    def count(self) -> int:
        return self.delta.drops if self.action == PACKET_LOSS else self.delta.errors


def findings(window: Window, t: Thresholds) -> list[Finding]:
    """The findings of one window, ingress before egress, packet_loss before errors."""
    out: list[Finding] = []
    for direction, d in ((INGRESS, window.ingress), (EGRESS, window.egress)):
        if d.drops and (d.drops >= t.drops or (d.drops >= t.min_count and d.loss_ratio >= t.loss_ratio)):
            out.append(Finding(window, direction, PACKET_LOSS, d, d.loss_ratio))
        if d.errors and (d.errors >= t.errors or (d.errors >= t.min_count and d.error_ratio >= t.loss_ratio)):
            out.append(Finding(window, direction, ERRORS, d, d.error_ratio))
    return out
