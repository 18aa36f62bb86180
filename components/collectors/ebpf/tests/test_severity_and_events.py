"""Severity rules and the records -> Event mapping (subjects, context, payload, deterministic ids)."""

from __future__ import annotations

from tapio.events.v1 import events_pb2
from tapio_collector_ebpf.domain import records as r
from tapio_collector_ebpf.domain.events import EventFactory
from tapio_collector_ebpf.domain.severity import SeverityRules
from tapio_publisher.subjects import event_subject

CID = "containerd://" + "ab" * 32


def _factory(rules: SeverityRules | None = None) -> EventFactory:
    def lookup(cgroup_id: int) -> tuple[str, str]:
        return (CID, "1111-pod") if cgroup_id == 42 else ("", "")

    return EventFactory(
        node="node-1", rules=rules or SeverityRules(), containers=lookup, wall_offset_ns=1_700_000_000 * 10**9
    )


def test_rates_and_thresholds() -> None:
    rules = SeverityRules(retransmit_warning_per_s=1, retransmit_error_per_s=50)
    assert rules.retransmit(1, 2_000_000_000) == events_pb2.SEVERITY_INFO  # 0.5/s
    assert rules.retransmit(10, 1_000_000_000) == events_pb2.SEVERITY_WARNING
    assert rules.retransmit(60, 1_000_000_000) == events_pb2.SEVERITY_ERROR
    assert rules.latency(150_000_000) == events_pb2.SEVERITY_WARNING
    assert rules.latency(5_000_000) == events_pb2.SEVERITY_INFO
    assert rules.exit(0, 9) == events_pb2.SEVERITY_ERROR
    assert rules.exit(1, 0) == events_pb2.SEVERITY_WARNING
    assert rules.exit(0, 0) == events_pb2.SEVERITY_DEBUG
    assert rules.oom() == events_pb2.SEVERITY_CRITICAL


def test_oom_sample_is_a_critical_oom_kill_in_its_container() -> None:
    s = r.OomSample(99, 5_000, 42, 98, 0, 1000, 10, 20, 30, 4096, 0, "java", "java")
    ev = _factory().sample(s, b"raw-bytes")
    assert event_subject(ev) == "tapio.events.ebpf.oom_kill.critical"
    assert (ev.source, ev.action, ev.kernel.oom_victim_pid, ev.kernel.oom_pages) == (
        events_pb2.SOURCE_EBPF,
        "killed",
        99,
        60,
    )
    assert (ev.context.container_id, ev.context.pod_uid, ev.context.node, ev.context.cgroup_id) == (
        CID,
        "1111-pod",
        "node-1",
        42,
    )
    assert ev.time.ToNanoseconds() == 1_700_000_000 * 10**9 + 5_000
    assert ev.id == _factory().sample(s, b"raw-bytes").id != _factory().sample(s, b"other").id


def test_retransmits_carry_count_window_and_rate_severity() -> None:
    a = r.FlowAggregate(
        r.KIND_RETRANSMIT, r.AF_INET, "10.0.0.1", "10.0.0.2", 0, 443, 7, 120, 1, 2, 0, 0, 55, "curl"
    )
    ev = _factory().flow(a, 1_000_000_000, b"key")
    assert event_subject(ev) == "tapio.events.ebpf.tcp_retransmit.error"
    k = ev.kernel
    assert (k.count, k.window_ns, k.saddr, k.daddr, k.sport, k.dport, k.pid) == (
        120,
        10**9,
        "10.0.0.1",
        "10.0.0.2",
        0,
        443,
        55,
    )
    assert ev.context.container_id == ""  # cgroup 7 is a host cgroup


def test_connects_report_max_and_average_latency() -> None:
    a = r.FlowAggregate(
        r.KIND_CONNECT, r.AF_INET, "127.0.0.1", "127.0.0.1", 0, 80, 42, 4, 1, 2, 400, 250, 1, "x"
    )
    ev = _factory().flow(a, 10**9, b"k")
    assert (ev.type, ev.action, ev.kernel.latency_ns, ev.attributes["latency_avg_ns"]) == (
        "tcp_connect",
        "connected",
        250,
        "100",
    )
    assert ev.severity == events_pb2.SEVERITY_INFO


def test_exits_by_status() -> None:
    crash = r.ProcAggregate(r.KIND_EXIT, 11 | 0x80, 42, "app", 2, 1, 2, 300, "")
    ev = _factory().proc(crash, 10**9, b"k")
    assert (ev.action, ev.kernel.signal, ev.kernel.exit_code, ev.kernel.count) == ("killed", 11, 0, 2)
    assert "core dumped" in ev.message
    assert event_subject(ev) == "tapio.events.ebpf.process_exit.error"
    ok = r.ProcAggregate(r.KIND_EXEC, 0, 42, "app", 1, 1, 2, 300, "/bin/app")
    ex = _factory().proc(ok, 10**9, b"k")
    assert (ex.type, ex.kernel.filename, ex.context.container_id) == ("process_exec", "/bin/app", CID)
