"""Real-delivery variants of a scenario: redeliveries, a node's collectors replaying late, skewed clocks.

A scenario's events are in time order, as if every collector delivered at once. These functions
return the same events in the order (and, for skew, with the timestamps) a consumer would see
under at-least-once delivery and imperfect clocks, so a test can check that the engine's final
incidents do not change:

- `redelivered`: a few events delivered twice, identical, up to `max_delay_s` after the first copy;
- `node_late`: every event the host collectors (systemd, eBPF, CNI) of one node publish arrives
  `delay_s` late (their spool after an outage); the Kubernetes API events are on time;
- `node_skewed`: the host collectors of one node stamp their events `offset_s` off (its clock).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import attrs

from tapio_common.model import Event, Source

HOST_SOURCES = frozenset({Source.SYSTEMD, Source.EBPF, Source.CNI})
_NS = 1_000_000_000


def host_nodes(events: Sequence[Event]) -> list[str]:
    """The nodes whose host collectors published at least one of the events, sorted."""
    return sorted({e.context.node for e in events if e.source in HOST_SOURCES and e.context.node})


def _from_node(event: Event, node: str) -> bool:
    return event.source in HOST_SOURCES and event.context.node == node


def _arrival_order(keyed: list[tuple[int, int, Event]]) -> list[Event]:
    return [e for _, _, e in sorted(keyed, key=lambda r: (r[0], r[1]))]


def redelivered(
    events: Sequence[Event],
    rng: random.Random,
    share: float = 0.05,
    at_least: int = 3,
    max_delay_s: float = 2.0,
) -> list[Event]:
    """The events with a few of them (`share`, at least `at_least`) delivered a second time."""
    keyed = [(e.time, i, e) for i, e in enumerate(events)]
    count = min(len(events), max(at_least, round(len(events) * share)))
    for i in rng.sample(range(len(events)), count):
        e = events[i]
        keyed.append((e.time + round(rng.uniform(0, max_delay_s) * _NS), len(keyed), e))
    return _arrival_order(keyed)


def node_late(events: Sequence[Event], node: str, delay_s: float = 120.0) -> list[Event]:
    """The events in arrival order when `node`'s host collectors deliver `delay_s` late."""
    delay = round(delay_s * _NS)
    keyed = [(e.time + (delay if _from_node(e, node) else 0), i, e) for i, e in enumerate(events)]
    return _arrival_order(keyed)


def node_skewed(events: Sequence[Event], node: str, offset_s: float) -> list[Event]:
    """The events with `node`'s host collector timestamps `offset_s` off, in (stamped) time order."""
    offset = round(offset_s * _NS)
    shifted = [attrs.evolve(e, time=e.time + offset) if _from_node(e, node) else e for e in events]
    return _arrival_order([(e.time, i, e) for i, e in enumerate(shifted)])
