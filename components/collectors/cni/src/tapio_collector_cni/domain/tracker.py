"""Counter deltas per interface and direction between two samples: wrap, reset and re-creation.

Pure: samples (decoded by `domain.wire`) and the sample times (monotonic for the window
length, wall clock for the event time) go in, windows with drops or errors
come out. State is one entry per interface present in the last sample (bounded by
`max_interfaces`); an interface gone from the sample is forgotten.

Rules:
- An interface is known by its ifindex and name. A new ifindex (an interface re-created under
  the same name gets one) or a changed name starts a new baseline: no window until the next
  sample, so deltas never span two generations of an interface.
- 64-bit link counters that go backwards were reset (driver reset): new baseline. A counter that
  falls from near 2^32 to a small value is a 32-bit counter in a 64-bit field that wrapped (some
  drivers do that): the delta is taken modulo 2^32.
- qdisc drop counters are 32-bit: deltas modulo 2^32. A qdisc replaced (other handle or kind)
  starts that direction's qdisc baseline again.
- Quiet interfaces (no drop or error counter moved) produce nothing and cost one tuple compare.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from tapio_collector_cni.domain.wire import QdiscDrops, Stats

U32 = 1 << 32
_NEAR_TOP_32 = U32 - (1 << 30)
_SMALL = 1 << 30
_NO_QDISC = QdiscDrops()
INGRESS = "ingress"
EGRESS = "egress"


def counter_delta(prev: int, cur: int, bits: int = 64) -> int | None:
    """Increase of a counter from `prev` to `cur`; None when it was reset (cannot be known)."""
    if cur >= prev:
        return cur - prev
    if bits == 32 or (_NEAR_TOP_32 <= prev < U32 and cur < _SMALL):
        return cur + U32 - prev
    return None


@attrs.frozen(slots=True)
class DirectionDelta:
    """One direction of one interface over one window. `offered` = packets the direction handled,
    delivered or lost (the denominator of loss ratios); `drops` = device + qdisc drops."""

    packets: int
    bytes: int
    drops: int
    errors: int
    device_drops: int
    qdisc_drops: int
    offered: int

    @property
    def loss_ratio(self) -> float:
        # min(): clsact drops count as ingress but may be egress drops the device never counted
        return min(1.0, self.drops / self.offered) if self.offered else 0.0

    @property
    def error_ratio(self) -> float:
        total = self.packets + self.errors
        return self.errors / total if total else 0.0


@attrs.frozen(slots=True)
class Window:
    """An interface whose drop or error counters moved between two samples."""

    index: int
    name: str
    start_ns: int  # monotonic clock
    end_ns: int  # monotonic clock
    time_ns: int  # wall clock (Unix ns) of the sample that closed the window
    ingress: DirectionDelta
    egress: DirectionDelta

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


@attrs.frozen(slots=True)
class Observation:
    windows: tuple[Window, ...]
    new: int  # interfaces seen for the first time (or re-created): baseline only
    gone: int  # interfaces no longer present
    resets: int  # interfaces whose counters went backwards: baseline only
    over_cap: int  # interfaces not tracked because of max_interfaces


@attrs.define(slots=True)
class _State:
    name: str
    stats: Stats
    qdisc: QdiscDrops
    time_ns: int


class Tracker:
    """Holds the previous sample of every interface and turns the next one into windows."""

    def __init__(self, max_interfaces: int = 16384) -> None:
        self.max_interfaces = max_interfaces
        self._state: dict[int, _State] = {}

    def __len__(self) -> int:
        return len(self._state)

    def observe(
        self,
        now_ns: int,
        wall_ns: int,
        stats: Mapping[int, Stats],
        qdiscs: Mapping[int, QdiscDrops],
        names: Mapping[int, str],
    ) -> Observation:
        old = self._state
        state: dict[int, _State] = {}
        windows: list[Window] = []
        new = resets = over_cap = 0
        for index, cur in stats.items():
            if len(state) >= self.max_interfaces:
                over_cap += 1
                continue
            name = names.get(index, "")
            q = qdiscs.get(index, _NO_QDISC)
            prev = old.get(index)
            state[index] = _State(name, cur, q, now_ns)
            if prev is None or prev.name != name:
                new += 1
                continue
            ps = prev.stats
            if cur[4:] == ps[4:] and q == prev.qdisc:
                continue  # errors and drops unchanged (fast path); regressions need a change here too
            window = _window(index, name, prev, cur, q, now_ns, wall_ns)
            if window is None:
                resets += 1
            elif window.ingress.drops or window.ingress.errors or window.egress.drops or window.egress.errors:
                windows.append(window)
        gone = sum(1 for i in old if i not in state)
        self._state = state
        return Observation(tuple(windows), new, gone, resets, over_cap)


def _window(
    index: int, name: str, prev: _State, cur: Stats, q: QdiscDrops, now_ns: int, wall_ns: int
) -> Window | None:
    deltas = [counter_delta(p, c) for p, c in zip(prev.stats, cur, strict=True)]
    if any(d is None for d in deltas):
        return None
    rx_p, tx_p, rx_b, tx_b, rx_e, tx_e, rx_d, tx_d = (d or 0 for d in deltas)
    pq = prev.qdisc
    q_in = counter_delta(pq.ingress, q.ingress, 32) if pq.ingress_id == q.ingress_id else 0
    q_out = counter_delta(pq.egress, q.egress, 32) if pq.egress_id == q.egress_id else 0
    q_in, q_out = q_in or 0, q_out or 0
    # A packet dropped by the ingress qdisc was already counted in rx_packets by the device; device
    # drops and everything dropped before the driver on egress were not counted as packets.
    ingress = DirectionDelta(rx_p, rx_b, rx_d + q_in, rx_e, rx_d, q_in, rx_p + rx_d)
    egress = DirectionDelta(tx_p, tx_b, tx_d + q_out, tx_e, tx_d, q_out, tx_p + tx_d + q_out)
    return Window(index, name, prev.time_ns, now_ns, wall_ns, ingress, egress)
