"""Thresholds, events (ids, subjects, peers, severities) of loss and error findings."""

from __future__ import annotations

from tapio_collector_cni.domain.events import Peer, finding_event, stable_id
from tapio_collector_cni.domain.thresholds import ERRORS, PACKET_LOSS, Thresholds, findings
from tapio_collector_cni.domain.tracker import DirectionDelta, Window
from tapio_collector_cni.domain.wire import LinkInfo
from tapio_common.model import Severity, Source
from tapio_common.model.convert import event_to_proto
from tapio_publisher.subjects import event_subject

QUIET = DirectionDelta(1000, 10**5, 0, 0, 0, 0, 1000)


def window(ingress: DirectionDelta = QUIET, egress: DirectionDelta = QUIET) -> Window:
    return Window(7, "veth1a2b", 0, 10_000_000_000, 1_700_000_000_000_000_000, ingress, egress)


def drops(n: int, delivered: int, qdisc: int = 0) -> DirectionDelta:
    return DirectionDelta(delivered, delivered * 100, n, 0, n - qdisc, qdisc, delivered + n)


def test_ratio_rule_needs_min_count() -> None:
    t = Thresholds()
    assert findings(window(egress=drops(9, 20)), t) == []  # 31 % but only 9 drops
    (f,) = findings(window(egress=drops(10, 990)), t)  # exactly 1 %
    assert (f.direction, f.action, f.count, f.ratio) == ("egress", PACKET_LOSS, 10, 0.01)


def test_absolute_drops_whatever_the_ratio() -> None:
    t = Thresholds()
    assert findings(window(ingress=drops(99, 1_000_000)), t) == []
    (f,) = findings(window(ingress=drops(100, 1_000_000)), t)
    assert f.direction == "ingress"


def test_errors_and_loss_are_separate_findings() -> None:
    both = DirectionDelta(500, 0, 200, 150, 200, 0, 700)
    got = findings(window(ingress=both), Thresholds())
    assert [(f.direction, f.action) for f in got] == [("ingress", PACKET_LOSS), ("ingress", ERRORS)]
    assert got[1].ratio == 150 / 650


def test_configurable_thresholds() -> None:
    t = Thresholds(loss_ratio=0.5, drops=10_000, errors=10_000, min_count=1)
    assert findings(window(egress=drops(400, 600)), t) == []
    assert len(findings(window(egress=drops(600, 400)), t)) == 1


def test_event_of_a_finding_with_its_peer() -> None:
    (f,) = findings(window(egress=drops(250, 750, qdisc=200)), Thresholds())
    link = LinkInfo(7, "veth1a2b", "veth", peer_index=2, peer_netnsid=4)
    peer = Peer(
        "net:[4026532999]", 4242, "nginx", "containerd://" + "ab" * 32, "8f2c4a1e-1b2c-4d5e-9f00-123456789abc"
    )
    ev = finding_event(f, "node-1", link, peer, cluster="prod", plugin="calico", role="pod")
    assert (ev.source, ev.type, ev.action, ev.severity) == (
        Source.CNI,
        "interface",
        PACKET_LOSS,
        Severity.ERROR,
    )
    n = ev.network
    assert n is not None
    assert (n.interface, n.direction, n.packets, n.drops, n.loss_ratio, n.window_seconds) == (
        "veth1a2b", "egress", 1000, 250, 0.25, 10.0,
    )  # fmt: skip
    assert n.peer_pod == peer.pod_uid
    c = ev.context
    assert (c.node, c.cluster, c.pid, c.comm, c.container_id, c.pod_uid) == (
        "node-1", "prod", 4242, "nginx", peer.container_id, peer.pod_uid,
    )  # fmt: skip
    assert ev.attributes["qdisc_drops"] == "200"
    assert ev.attributes["device_drops"] == "50"
    assert ev.attributes["peer_ifindex"] == "2"
    assert ev.attributes["cni_plugin"] == "calico"
    assert ev.attributes["role"] == "pod"
    assert ev.time == 1_700_000_000_000_000_000
    assert event_subject(ev) == "tapio.events.cni.veth1a2b.egress"
    assert event_subject(event_to_proto(ev)) == "tapio.events.cni.veth1a2b.egress"
    assert "dropped 250 of 1000 sent packets (25.0%) in 10 s" in ev.message


def test_ids_are_deterministic_and_distinct() -> None:
    w = window(ingress=drops(200, 800), egress=drops(200, 800))
    a, b = (finding_event(f, "node-1", None) for f in findings(w, Thresholds()))
    again = [finding_event(f, "node-1", None) for f in findings(w, Thresholds())]
    assert [a.id, b.id] == [e.id for e in again]
    assert a.id != b.id
    assert finding_event(findings(w, Thresholds())[0], "node-2", None).id != a.id
    assert len(a.id) == 36
    assert a.id[14] == "8"
    assert stable_id("x") != stable_id("y")


def test_a_mild_loss_is_a_warning() -> None:
    (f,) = findings(window(ingress=drops(100, 9900)), Thresholds())
    assert finding_event(f, "n", None).severity is Severity.WARNING
