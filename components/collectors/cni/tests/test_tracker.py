"""Counter deltas: windows, quiet interfaces, wrap, reset, re-creation, qdisc changes, bounds."""

from __future__ import annotations

from tapio_collector_cni.domain.tracker import U32, Tracker, counter_delta
from tapio_collector_cni.domain.wire import QdiscDrops, Stats

S = 1_000_000_000


def st(rx_p: int = 0, tx_p: int = 0, rx_e: int = 0, tx_e: int = 0, rx_d: int = 0, tx_d: int = 0) -> Stats:
    return (rx_p, tx_p, rx_p * 100, tx_p * 100, rx_e, tx_e, rx_d, tx_d)


def test_counter_delta() -> None:
    assert counter_delta(5, 9) == 4
    assert counter_delta(U32 - 10, 5, bits=32) == 15
    assert counter_delta(U32 - 10, 5) == 15  # a 32-bit counter in a 64-bit field
    assert counter_delta(1000, 10) is None  # a reset
    assert counter_delta(1 << 40, 3) is None


def test_first_sample_is_a_baseline_then_drops_make_a_window() -> None:
    t = Tracker()
    obs = t.observe(0, 100, {3: st(10, 10)}, {}, {3: "eth0"})
    assert (obs.windows, obs.new) == ((), 1)
    obs = t.observe(10 * S, 200, {3: st(1010, 510, tx_d=90)}, {}, {3: "eth0"})
    (w,) = obs.windows
    assert (w.name, w.seconds, w.time_ns) == ("eth0", 10.0, 200)
    assert (w.egress.packets, w.egress.drops, w.egress.offered) == (500, 90, 590)
    assert w.ingress.drops == 0
    assert w.egress.loss_ratio == 90 / 590


def test_quiet_interfaces_give_nothing() -> None:
    t = Tracker()
    t.observe(0, 0, {1: st(5, 5), 2: st(0, 0)}, {}, {1: "a", 2: "b"})
    obs = t.observe(S, S, {1: st(50_000, 40_000), 2: st(1, 1)}, {}, {1: "a", 2: "b"})
    assert obs.windows == ()


def test_ingress_qdisc_drops_are_part_of_rx_packets() -> None:
    t = Tracker()
    q0 = QdiscDrops(ingress=7, ingress_id="ingress:ffff0000")
    t.observe(0, 0, {1: st(100)}, {1: q0}, {1: "veth1"})
    q1 = QdiscDrops(ingress=57, ingress_id="ingress:ffff0000")
    (w,) = t.observe(S, S, {1: st(300)}, {1: q1}, {1: "veth1"}).windows
    assert (w.ingress.drops, w.ingress.qdisc_drops, w.ingress.offered) == (50, 50, 200)
    assert w.ingress.loss_ratio == 0.25


def test_egress_qdisc_drops_add_to_offered() -> None:
    t = Tracker()
    t.observe(0, 0, {1: st()}, {1: QdiscDrops(egress=U32 - 5, egress_id="htb:10000")}, {1: "e"})
    (w,) = t.observe(
        S, S, {1: st(tx_p=100)}, {1: QdiscDrops(egress=95, egress_id="htb:10000")}, {1: "e"}
    ).windows
    assert (w.egress.drops, w.egress.offered) == (100, 200)  # the 32-bit qdisc counter wrapped


def test_a_replaced_qdisc_starts_over() -> None:
    t = Tracker()
    t.observe(0, 0, {1: st()}, {1: QdiscDrops(egress=5000, egress_id="htb:10000")}, {1: "e"})
    obs = t.observe(S, S, {1: st(tx_p=10)}, {1: QdiscDrops(egress=3, egress_id="tbf:20000")}, {1: "e"})
    assert obs.windows == ()


def test_counter_reset_is_a_new_baseline() -> None:
    t = Tracker()
    t.observe(0, 0, {1: st(10_000, 10_000, tx_d=500)}, {}, {1: "eth0"})
    obs = t.observe(S, S, {1: st(10, 10, tx_d=2)}, {}, {1: "eth0"})
    assert (obs.windows, obs.resets) == ((), 1)
    (w,) = t.observe(2 * S, 2 * S, {1: st(20, 10, tx_d=300)}, {}, {1: "eth0"}).windows
    assert w.egress.drops == 298


def test_recreated_interface_is_a_new_generation() -> None:
    t = Tracker()
    t.observe(0, 0, {4: st(tx_d=10)}, {}, {4: "veth0"})
    obs = t.observe(S, S, {9: st(tx_d=0)}, {}, {9: "veth0"})  # same name, new ifindex
    assert (obs.windows, obs.new, obs.gone) == ((), 1, 1)
    assert len(t) == 1


def test_renamed_index_is_a_new_baseline() -> None:
    t = Tracker()
    t.observe(0, 0, {4: st()}, {}, {4: "eth0"})
    obs = t.observe(S, S, {4: st(tx_d=999)}, {}, {4: "eth1"})
    assert (obs.windows, obs.new) == ((), 1)


def test_state_is_bounded() -> None:
    t = Tracker(max_interfaces=3)
    stats = {i: st() for i in range(10)}
    obs = t.observe(0, 0, stats, {}, {i: f"v{i}" for i in range(10)})
    assert (len(t), obs.over_cap) == (3, 7)


def test_errors_per_direction() -> None:
    t = Tracker()
    t.observe(0, 0, {1: st()}, {}, {1: "vx"})
    (w,) = t.observe(S, S, {1: st(rx_p=0, rx_e=120, tx_e=3)}, {}, {1: "vx"}).windows
    assert (w.ingress.errors, w.ingress.error_ratio, w.egress.errors) == (120, 1.0, 3)
