"""Pure core: unit names/paths, filters, transition detection, events and the state snapshot."""

from __future__ import annotations

import pytest

from tapio.events.v1 import events_pb2
from tapio_collector_systemd.domain import snapshot
from tapio_collector_systemd.domain.events import build_event, describe, event_id, needs_journal
from tapio_collector_systemd.domain.fence import Fence
from tapio_collector_systemd.domain.filters import UnitFilter
from tapio_collector_systemd.domain.tracker import Seen, Tracker, Transition
from tapio_collector_systemd.domain.units import UnitState, service_token, unit_name_from_path, unit_path
from tapio_collector_systemd.errors import SnapshotError
from tapio_common.errors import ConfigError
from tapio_publisher.subjects import event_subject

UNIT_IFACE = {"ActiveState", "SubState"}


def unit_signal(active: str, sub: str, mono: int, **extra: object) -> dict[str, object]:
    return {"ActiveState": active, "SubState": sub, "StateChangeTimestamp": 1_700_000_000_000_000 + mono,
            "StateChangeTimestampMonotonic": mono, "Id": "ignored", **extra}  # fmt: skip


def test_unit_paths_round_trip() -> None:
    for unit in ("kubelet.service", "docker.socket", "getty@tty1.service", "a-b_c.mount", "x\\x2dy.slice"):
        assert unit_name_from_path(unit_path(unit)) == unit
    assert unit_path("kubelet.service") == "/org/freedesktop/systemd1/unit/kubelet_2eservice"
    assert unit_name_from_path("/org/freedesktop/systemd1/job/12") is None


def test_service_token_and_subject() -> None:
    assert service_token("kubelet.service") == "kubelet"
    assert service_token("docker.socket") == "docker.socket"
    t = Transition(None, UnitState("docker.socket", "failed", "failed"), Seen.INITIAL)
    assert event_subject(build_event(t, "n1", now_usec=1)) == "tapio.events.systemd.docker_socket.failed"
    t = Transition(None, UnitState("nginx.service", "failed", "failed"), Seen.INITIAL)
    assert event_subject(build_event(t, "n1", now_usec=1)) == "tapio.events.systemd.nginx.failed"


def test_filter_globs_include_minus_exclude() -> None:
    f = UnitFilter(include=("kube*.service", "containerd.service"), exclude=("kube-proxy.service",))
    assert f("kubelet.service")
    assert f("containerd.service")
    assert not f("kube-proxy.service")
    assert not f("cron.service")
    assert UnitFilter()("kubelet.service")
    assert UnitFilter()("docker.socket")
    assert not UnitFilter()("cron.service")
    with pytest.raises(ConfigError, match="bad unit pattern"):
        UnitFilter(include=("",))


def test_signal_transitions_one_per_state_change() -> None:
    tr = Tracker()
    service = {"Result": "success", "ExecMainCode": 0, "ExecMainStatus": 0, "NRestarts": 0}
    assert tr.properties_changed("a.service", service) is None  # type interface first: no transition
    t = tr.properties_changed("a.service", unit_signal("active", "running", 10))
    assert t is not None
    assert t.seen is Seen.SIGNAL
    assert (t.previous_state, t.before and t.before.sub_state, t.after.state) == (
        "inactive",
        "dead",
        ("active", "running"),
    )
    # the same state again (another property of the Unit interface changed): nothing
    assert tr.properties_changed("a.service", unit_signal("active", "running", 10)) is None
    tr.properties_changed("a.service", {"Result": "exit-code", "ExecMainCode": 1, "ExecMainStatus": 3})
    t = tr.properties_changed("a.service", unit_signal("failed", "failed", 20))
    assert t is not None
    assert t.previous_state == "active"
    assert (t.after.result, t.after.exit_code, t.after.exit_status) == ("exit-code", 1, 3)
    assert needs_journal(t)


def test_restart_folded_into_one_signal_is_a_transition() -> None:
    tr = Tracker({"a.service": UnitState("a.service", "activating", "auto-restart", restarts=1)})
    t = tr.properties_changed("a.service", {**unit_signal("activating", "auto-restart", 30), "NRestarts": 2})
    assert t is not None
    assert t.after.restarts == 2
    assert t.before is not None
    assert t.before.restarts == 1


def test_new_invocation_id_of_an_inactive_unit_is_no_transition() -> None:
    tr = Tracker({"a.target": UnitState("a.target", "inactive", "dead", invocation_id="old")})
    assert (
        tr.properties_changed("a.target", unit_signal("inactive", "dead", 5, InvocationID=b"\x01\x02"))
        is None
    )
    t = tr.properties_changed("a.target", unit_signal("active", "active", 6, InvocationID=b"\x01\x02"))
    assert t is not None
    assert t.after.invocation_id == "0102"
    # a run folded into one signal (same state, new invocation) is one
    t = tr.properties_changed("a.target", unit_signal("active", "active", 9, InvocationID=b"\x03"))
    assert t is not None
    assert t.before is not None
    assert t.before.invocation_id == "0102"


def test_fence_drops_signals_older_than_a_listing_until_its_reply() -> None:
    f = Fence()
    f.hold("a.service", 7)
    assert f.blocks("a.service")  # delivered before the reply of reading 7: older than the listing
    assert not f.blocks("b.service")
    f.hold("a.service", 9)  # read again: only the newer reading's reply releases it
    f.release(7)
    assert f.blocks("a.service")
    f.release(9)
    assert not f.blocks("a.service")
    assert f.stale == 2
    assert len(f) == 0


def test_relist_publishes_only_what_changed() -> None:
    before = {"a.service": UnitState("a.service", "active", "running", changed_usec=5),
              "b.service": UnitState("b.service", "active", "running", changed_usec=5)}  # fmt: skip
    tr = Tracker(before)
    out = tr.listed([UnitState("a.service", "active", "running", changed_usec=5),
                     UnitState("b.service", "failed", "failed", result="signal", changed_usec=9),
                     UnitState("c.service", "inactive", "dead")])  # fmt: skip
    assert [(t.unit, t.seen, t.previous_state) for t in out] == [
        ("b.service", Seen.RELIST, "active"),
        ("c.service", Seen.INITIAL, ""),
    ]
    assert tr.listed([UnitState("b.service", "failed", "failed", result="signal", changed_usec=9)]) == []


def test_event_fields_and_deterministic_id() -> None:
    before = UnitState("kubelet.service", "active", "running", restarts=2)
    after = UnitState(
        "kubelet.service", "failed", "failed", "exit-code", 1, 255, 3, 1_700_000_000_123_456, "ab12"
    )
    t = Transition(before, after, Seen.SIGNAL)
    ev = build_event(t, "node-1", now_usec=1, journal=["line 1", "line 2"], cluster="c1")
    assert ev.source == events_pb2.SOURCE_SYSTEMD
    assert ev.type == "unit"
    assert ev.action == "failed"
    assert ev.severity == events_pb2.SEVERITY_CRITICAL  # kubelet is node-critical
    assert ev.time.seconds == 1_700_000_000
    assert ev.time.nanos == 123_456_000
    assert (ev.context.node, ev.context.service, ev.context.cluster) == ("node-1", "kubelet", "c1")
    s = ev.systemd
    assert (s.unit, s.active_state, s.sub_state, s.result, s.exit_code, s.exit_status, s.previous_state, s.restarts) == (
        "kubelet.service", "failed", "failed", "exit-code", 1, 255, "active", 3)  # fmt: skip
    assert dict(ev.attributes) == {"seen": "signal", "previous_sub_state": "running", "invocation_id": "ab12",
                                   "exit_code_name": "exited", "journal": "line 1\nline 2"}  # fmt: skip
    assert ev.id == event_id("node-1", t) == build_event(t, "node-1", now_usec=99).id
    assert ev.id != event_id("node-2", t)
    assert ev.id.startswith("018bcfe5-")  # UUIDv7 time prefix = StateChangeTimestamp
    assert describe(t, "node-1") == (
        "kubelet.service on node-1 went from active to failed (failed): result exit-code, exit status 255, 3 restarts"
    )
    other = build_event(
        Transition(None, UnitState("cron.service", "failed", "failed"), Seen.INITIAL), "n", now_usec=1
    )
    assert other.severity == events_pb2.SEVERITY_ERROR
    assert other.attributes["initial"] == "true"


def test_initial_and_signal_of_the_same_state_share_the_id() -> None:
    state = UnitState("a.service", "active", "running", changed_usec=42, invocation_id="x")
    a = event_id("n", Transition(None, state, Seen.INITIAL))
    b = event_id("n", Transition(UnitState("a.service", "inactive", "dead"), state, Seen.SIGNAL))
    assert a == b


def test_snapshot_round_trip_and_errors() -> None:
    states = {"a.service": UnitState("a.service", "failed", "failed", "exit-code", 1, 3, 2, 10, "ff")}
    assert snapshot.loads(snapshot.dumps(states), "f") == states
    for bad in ("{", "[]", '{"format": 2, "units": {}}', '{"format": 1, "units": {"a": {"nope": 1}}}'):
        with pytest.raises(SnapshotError):
            snapshot.loads(bad, "f")
