"""network_degradation: CNI loss/errors on a node's interface -> >= 50 retransmits from its pods in 2 min."""

from __future__ import annotations

from tapio_common.model import Event
from tapio_scenariogen import names
from tapio_scenariogen.cluster import Pod
from tapio_scenariogen.families.common import Builder
from tapio_scenariogen.world import NETWORK_WINDOW, RETRANSMIT_THRESHOLD, World


def split(w: World, total: int, parts: int) -> list[int]:
    """`total` split into `parts` positive counts."""
    if parts <= 1:
        return [total]
    cuts = sorted(w.rng.sample(range(1, total), parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


def retransmits(w: World, start: float, span: float, pods: list[Pod], total: int) -> list[Event]:
    """Retransmit (sometimes reset) findings from `pods`, counts summing to `total`, within `span` s."""
    counts = split(w, total, w.rng.randint(1, min(5, total)))
    times = sorted(start + w.jitter(0, span) for _ in counts)
    reset = w.rng.random() < 0.2
    return [
        w.emit.retransmit(t, w.rng.choice(pods), c, reset=reset and i == len(counts) - 1)
        for i, (t, c) in enumerate(zip(times, counts, strict=True))
    ]


def cni_event(w: World, t: float, node: str, errors: bool) -> Event:
    return w.emit.cni_loss(t, node, w.rng.choice(names.INTERFACES), w.jitter(0.012, 0.2), errors=errors)


def _degradation(w: World, t0: float, errors: bool) -> float:
    node, _ = w.node_with_workloads(w.rng.choice((1, 2, 3)))
    root = cni_event(w, t0, node, errors)
    total = w.rng.randint(RETRANSMIT_THRESHOLD + 10, 400)
    found = retransmits(w, t0 + w.jitter(2, 15), NETWORK_WINDOW - 30, w.cluster.pods_on(node), total)
    end = w.at(found[-1])
    w.guard([node], w.cluster.pods_on(node), t0, end)
    w.expect("network_degradation", root, [root, *found], "high")
    return end


def packet_loss(w: World, t0: float) -> float:
    """Packet loss on a node interface -> >= 50 retransmits from its pods within 2 minutes (high)."""
    return _degradation(w, t0, errors=False)


def interface_errors(w: World, t0: float) -> float:
    """Interface errors on a node -> >= 50 retransmits/resets from its pods within 2 minutes (high)."""
    return _degradation(w, t0, errors=True)


VARIANTS: dict[str, Builder] = {"packet_loss": packet_loss, "interface_errors": interface_errors}
