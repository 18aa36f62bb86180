"""service_dependency_failure, "toward a workload", cgroup ids, and lone errors of any type."""

from __future__ import annotations

from tapio_common.model import Confidence, Context, Event, KernelEvent, Severity, Source
from tapio_correlator_testing import Cluster, Pod, at, final, one, significant


def _world(c: Cluster) -> tuple[list[Pod], list[Pod], list[Pod], list[Event]]:
    """Service `db` (2 pods) in `data`; callers `api` (in `shop`) and `jobs` (in `data`)."""
    db = [c.pod("data", "db", "n1"), c.pod("data", "db", "n2")]
    api = [c.pod("shop", "api", "n3"), c.pod("shop", "api", "n4")]
    jobs = [c.pod("data", "jobs", "n5")]
    setup = [c.created(i * 0.1, p, ip=f"10.0.0.{i + 10}") for i, p in enumerate([*db, *api, *jobs])]
    setup.append(c.service(1, "data", "db", "db", cluster_ip="10.96.0.5"))
    return db, api, jobs, setup


def test_callers_with_connection_evidence_make_a_high_dependency_failure_rooted_at_the_service() -> None:
    c = Cluster()
    _db, api, _, setup = _world(c)
    down = c.service_down(100, "data", "db", "db")
    resets = c.reset(110, api[0], "10.96.0.5")
    failures = [c.fail(130, api[0], "unhealthy"), c.restart(150, api[1], 1, exit_code=1)]
    corr = one(final([*setup, down, resets, *failures]), "service_dependency_failure")
    assert corr.root_cause_event_id == down.id
    assert corr.confidence is Confidence.HIGH
    assert {f.id for f in failures} | {resets.id} <= set(corr.event_ids)
    assert {e.relation for e in corr.evidence} >= {"root_cause", "depends_on", "connects_to"}
    assert "data/db" in corr.summary


def test_evidence_toward_a_pod_ip_after_the_failure_still_counts() -> None:
    c = Cluster()
    _db, _, jobs, setup = _world(c)
    events = [*setup, c.service_down(100, "data", "db", "db"), c.fail(120, jobs[0], "unhealthy")]
    assert one(final(events), "service_dependency_failure").confidence is Confidence.MEDIUM  # timing only
    events.append(c.reset(125, jobs[0], "10.0.0.11"))  # toward the second db pod
    assert one(final(events), "service_dependency_failure").confidence is Confidence.HIGH


def test_no_dependency_without_a_link_or_after_the_window() -> None:
    c = Cluster()
    db, api, _, setup = _world(c)
    down = c.service_down(100, "data", "db", "db")
    assert significant(final([*setup, down, c.fail(130, api[0], "unhealthy")])) == []  # other namespace
    late = [c.reset(110, api[0], "10.96.0.5"), c.fail(100 + 330, api[0], "unhealthy")]
    assert significant(final([*setup, down, *late])) == []
    own = [c.fail(120, db[0], "unhealthy")]  # the Service's own pod is no caller
    assert significant(final([*setup, down, *own])) == []


def test_callers_join_an_earlier_cause_of_the_service_loss_as_depends_on() -> None:
    c = Cluster()
    db, api, _, setup = _world(c)
    kill = c.oom_kill(90, db[0])
    chain = [
        kill,
        c.oom_killed(91, db[0]),
        c.fail(100, db[1], "unhealthy"),
        c.service_down(110, "data", "db", "db"),
    ]
    callers = [c.reset(112, api[0], "10.96.0.5"), c.fail(130, api[0], "unhealthy")]
    result = significant(final([*setup, *chain, *callers]))
    assert [(r.type, r.root_cause_event_id) for r in result] == [("cascading_failure", kill.id)]
    relations = {e.event_id: e.relation for e in result[0].evidence}
    assert relations[callers[1].id] == "depends_on"


def test_slow_connects_toward_a_workload_count_for_it() -> None:
    c = Cluster()
    db, api, _, setup = _world(c)
    slow = [c.latency(100 + 20 * i, api[i % 2], 800, daddr="10.96.0.5") for i in range(3)]
    sick = [c.fail(200, db[0], "unhealthy"), c.fail(210, db[1], "unhealthy")]
    corr = one(final([*setup, *slow, *sick]), "performance_degradation")
    assert corr.root_cause_event_id == slow[0].id
    assert corr.scope.workload is not None
    assert corr.scope.workload.name == "db"


def test_a_kernel_event_with_only_a_cgroup_id_finds_its_pod() -> None:
    c = Cluster()
    a, b = c.pod("shop", "cart", "n1"), c.pod("shop", "cart", "n2")
    created = c.created(0, a)
    with_cgroup = Event(
        created.id + "-cg",
        at(0.5),
        Source.K8S,
        "pods",
        "updated",
        Severity.INFO,
        "",
        Context(cluster="test", namespace="shop", pod=a.name, pod_uid=a.uid, node="n1", cgroup_id=4242),
    )
    kill = Event(
        "kill-cg",
        at(100),
        Source.EBPF,
        "oom_kill",
        "killed",
        Severity.CRITICAL,
        "oom",
        Context(cluster="test", node="n1", cgroup_id=4242),
        kernel=KernelEvent(pid=7, comm="cart"),
    )
    events = [created, c.created(0.2, b), with_cgroup, kill, c.fail(130, b, "unhealthy")]
    events.append(c.service_down(200, "shop", "cart", "cart"))
    corr = one(final([c.service(1, "shop", "cart", "cart"), *events]), "cascading_failure")
    assert corr.root_cause_event_id == kill.id


def test_a_lone_error_of_any_type_is_a_potential_issue() -> None:
    c = Cluster()
    p = c.pod("shop", "cart", "n1")
    lone = [
        c.core_event(100, p, "FailedMount"),
        c.process_exit(200, p, signal=11),
        c.unit(300, "n2", "nginx", state="activating", sev=Severity.ERROR),
    ]
    quiet = [c.core_event(400, p, "Pulled", sev=Severity.INFO), c.process_exit(500, p, signal=0)]
    result = final([c.created(0, p), *lone, *quiet])
    assert sorted(r.root_cause_event_id for r in result) == sorted(e.id for e in lone)
    assert all(r.type == "potential_issue" and r.confidence is Confidence.LOW for r in result)
