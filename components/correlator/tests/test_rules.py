"""One test per rule of CORRELATION.md: what correlates, with which confidence and root cause."""

from __future__ import annotations

import attrs

from tapio_common.model import Confidence, Context, Event
from tapio_correlator_testing import Cluster, Pod, final, one, significant


def _setup(c: Cluster, pods: list[Pod], t: float = 0.0) -> list[Event]:
    return [c.created(t + i * 0.1, p) for i, p in enumerate(pods)]


def test_oom_cascade_reaching_a_service_is_high_rooted_at_the_kernel_kill() -> None:
    c = Cluster()
    a, b = c.pod("shop", "cart", "n1"), c.pod("shop", "cart", "n2")
    kill = c.oom_kill(100, a)
    events = [*_setup(c, [a, b]), c.service(1, "shop", "cart", "cart"), kill, c.oom_killed(101.5, a)]
    events += [
        c.oom_restart(110, a),
        c.fail(140, b, "unhealthy"),
        c.service_down(220, "shop", "cart", "cart"),
    ]
    corr = one(final(events), "cascading_failure")
    assert corr.confidence is Confidence.HIGH
    assert corr.root_cause_event_id == kill.id
    assert corr.event_ids[0] == kill.id
    assert set(corr.event_ids) == {e.id for e in events[3:]}
    assert corr.scope.service == "cart"
    relations = {ev.relation for ev in corr.evidence}
    assert {"root_cause", "same_pod", "same_owner", "selected_by_service"} <= relations
    assert "cart" in corr.summary
    assert "OOM" in corr.summary


def test_endpoints_with_no_ready_address_is_an_impact_through_the_known_selector() -> None:
    c = Cluster()
    a = c.pod("shop", "cart", "n1")
    kill = c.oom_killed(100, a)
    events = [*_setup(c, [a]), c.service(1, "shop", "cart-svc", "cart"), kill, c.oom_restart(105, a)]
    events.append(c.endpoints(200, "shop", "cart-svc", 0))
    corr = one(final(events), "cascading_failure")
    assert corr.root_cause_event_id == kill.id
    assert corr.confidence is Confidence.HIGH


def test_service_impact_after_the_window_does_not_join() -> None:
    c = Cluster()
    a = c.pod("shop", "cart", "n1")
    events = [*_setup(c, [a]), c.oom_kill(100, a), c.oom_killed(101, a), c.oom_restart(110, a)]
    events.append(c.service_down(110 + 330, "shop", "cart", "cart"))
    assert significant(final(events)) == []


def test_oom_then_pods_of_two_other_workloads_on_its_node_is_a_medium_cascade() -> None:
    c = Cluster()
    victim, x, y = c.pod("a", "db", "n1"), c.pod("b", "web", "n1"), c.pod("c", "api", "n1")
    kill = c.oom_kill(100, victim)
    events = [*_setup(c, [victim, x, y]), kill, c.oom_killed(101, victim), c.fail(130, x, "unhealthy")]
    events.append(c.restart(170, y, 1))
    corr = one(final(events), "cascading_failure")
    assert corr.confidence is Confidence.MEDIUM
    assert corr.root_cause_event_id == kill.id


def test_different_namespaces_on_other_nodes_do_not_correlate() -> None:
    c = Cluster()
    victim, x, y = c.pod("a", "db", "n1"), c.pod("b", "db", "n2"), c.pod("b", "api", "n3")
    events = [*_setup(c, [victim, x, y]), c.oom_kill(100, victim), c.oom_killed(101, victim)]
    events += [c.fail(130, x, "unhealthy"), c.restart(170, y, 1), c.service_down(200, "b", "db", "db")]
    assert significant(final(events)) == []


def test_node_failure_is_high_with_pods_lost_and_medium_without() -> None:
    c = Cluster()
    p1, p2 = c.pod("a", "web", "n1"), c.pod("b", "api", "n1")
    unit = c.unit(100, "n1", "containerd")
    events = [*_setup(c, [p1, p2]), unit, c.node_not_ready(200, "n1")]
    medium = one(final(events), "node_failure")
    assert medium.confidence is Confidence.MEDIUM
    assert medium.root_cause_event_id == unit.id
    events += [c.fail(215, p1, "not_ready"), c.fail(230, p2, "evicted")]
    corr = one(final(events), "node_failure")
    assert corr.confidence is Confidence.HIGH
    assert corr.root_cause_event_id == unit.id
    assert len(corr.event_ids) == 4
    assert [c2 for c2 in significant(final(events)) if c2.type != "node_failure"] == []


def test_node_not_ready_too_late_after_the_unit_is_no_node_failure() -> None:
    c = Cluster()
    events = [c.unit(100, "n1", "kubelet"), c.node_not_ready(100 + 330, "n1")]
    assert significant(final(events)) == []


def test_node_failure_reaching_a_service_becomes_a_cascade_in_place() -> None:
    c = Cluster()
    p1 = c.pod("a", "web", "n1")
    unit = c.unit(100, "n1", "kubelet")
    events = [*_setup(c, [p1]), c.service(1, "a", "web", "web"), unit, c.node_not_ready(150, "n1")]
    events += [c.fail(160, p1, "not_ready"), c.service_down(200, "a", "web", "web")]
    from tapio_correlator_testing import run

    revisions = [r for r in run(events) if r.score >= 0.5]
    assert [r.type for r in revisions] == ["node_failure", "node_failure", "cascading_failure"]
    assert len({r.id for r in revisions}) == 1, "the type change keeps the incident's id"
    assert [r.revision for r in revisions] == [1, 2, 3]
    corr = one(final(events), "cascading_failure")
    assert corr.root_cause_event_id == unit.id
    assert corr.confidence is Confidence.HIGH


def test_unit_failure_breaking_pods_of_two_workloads_is_a_medium_cascade() -> None:
    c = Cluster()
    p1, p2 = c.pod("a", "web", "n1"), c.pod("b", "api", "n1")
    unit = c.unit(100, "n1", "kube-proxy")
    events = [*_setup(c, [p1, p2]), unit, c.fail(130, p1, "unhealthy"), c.restart(160, p2, 1)]
    corr = one(final(events), "cascading_failure")
    assert corr.confidence is Confidence.MEDIUM
    assert corr.root_cause_event_id == unit.id


def test_crash_loop_medium_at_three_restarts_high_at_five() -> None:
    c = Cluster()
    p = c.pod("shop", "queue", "n1")
    restarts = [c.restart(100 + 40 * i, p, i + 1, crash=i >= 2) for i in range(5)]
    corr = one(final([*_setup(c, [p]), *restarts[:3]]), "crash_loop")
    assert corr.confidence is Confidence.MEDIUM
    assert corr.root_cause_event_id == restarts[0].id
    corr = one(final([*_setup(c, [p]), *restarts]), "crash_loop")
    assert corr.confidence is Confidence.HIGH
    assert list(corr.event_ids) == [r.id for r in restarts]


def test_single_restart_two_restarts_and_slow_restarts_are_no_crash_loop() -> None:
    c = Cluster()
    p = c.pod("shop", "queue", "n1")
    assert significant(final([c.restart(100, p, 1)])) == []
    assert significant(final([c.restart(100, p, 1), c.restart(150, p, 2)])) == []
    slow = [c.restart(100 + 320 * i, p, i + 1) for i in range(3)]  # never 3 within 10 minutes
    assert significant(final(slow)) == []


def test_clean_exits_and_oom_kills_are_no_crash_loop() -> None:
    c = Cluster()
    p = c.pod("shop", "queue", "n1")
    clean = [c.restart(100 + 30 * i, p, i + 1, exit_code=0) for i in range(4)]
    assert significant(final(clean)) == []
    ooms = [
        e for i in range(3) for e in (c.oom_killed(100 + 60 * i, p, i), c.oom_restart(105 + 60 * i, p, i + 1))
    ]
    result = significant(final(ooms))
    assert [r.type for r in result] == ["resource_pressure"], "repeated OOM kills, never a crash_loop"


def test_pressure_with_evictions_is_high_and_without_only_a_potential_issue() -> None:
    c = Cluster()
    p1, p2 = c.pod("a", "web", "n1"), c.pod("b", "api", "n1")
    rise = c.node_condition(100, "n1", "MemoryPressure", "True")
    events = [*_setup(c, [p1, p2]), rise, c.fail(200, p1, "evicted"), c.fail(230, p2, "evicted")]
    corr = one(final(events), "resource_pressure")
    assert corr.confidence is Confidence.HIGH
    assert corr.root_cause_event_id == rise.id
    alone = final([rise, c.node_condition(300, "n1", "MemoryPressure", "False")])
    assert significant(alone) == []
    assert [(x.type, x.confidence) for x in alone] == [("potential_issue", Confidence.LOW)]


def test_evictions_after_the_pressure_window_do_not_join() -> None:
    c = Cluster()
    p1 = c.pod("a", "web", "n1")
    events = [
        *_setup(c, [p1]),
        c.node_condition(100, "n1", "DiskPressure", "True"),
        c.fail(100 + 700, p1, "evicted"),
    ]
    assert significant(final(events)) == []


def test_repeated_oom_in_one_workload_is_medium_and_turns_into_a_cascade_in_place() -> None:
    c = Cluster()
    a, b = c.pod("shop", "cart", "n1"), c.pod("shop", "cart", "n2")
    first = c.oom_kill(100, a)
    events = [*_setup(c, [a, b]), c.service(1, "shop", "cart", "cart"), first, c.oom_killed(101, a)]
    events += [c.oom_kill(180, b), c.oom_killed(181, b)]
    corr = one(final(events), "resource_pressure")
    assert corr.confidence is Confidence.MEDIUM
    assert corr.root_cause_event_id == first.id
    events.append(c.service_down(240, "shop", "cart", "cart"))
    result = significant(final(events))
    assert [(r.type, r.confidence) for r in result] == [("cascading_failure", Confidence.HIGH)]
    assert result[0].id == corr.id
    assert result[0].root_cause_event_id == first.id


def test_single_oom_is_only_a_potential_issue() -> None:
    c = Cluster()
    a = c.pod("shop", "cart", "n1")
    result = final([*_setup(c, [a]), c.oom_kill(100, a), c.oom_killed(101, a), c.oom_restart(110, a)])
    assert significant(result) == []
    assert [r.type for r in result] == ["potential_issue"]
    assert len(result[0].event_ids) == 3


def test_network_degradation_high_when_pods_on_the_lossy_node_retransmit() -> None:
    c = Cluster()
    p1, p2 = c.pod("a", "web", "n1"), c.pod("b", "api", "n1")
    loss = c.cni_loss(100, "n1")
    events = [*_setup(c, [p1, p2]), loss, c.retransmit(110, p1, 30), c.retransmit(150, p2, 25)]
    corr = one(final(events), "network_degradation")
    assert corr.confidence is Confidence.HIGH
    assert corr.root_cause_event_id == loss.id


def test_network_degradation_names_the_pods_of_retransmits_that_carry_only_a_pod_uid() -> None:
    c = Cluster()
    p1, p2 = c.pod("a", "web", "n1"), c.pod("b", "api", "n1")
    loss = c.cni_loss(100, "n1")
    by_uid = [
        attrs.evolve(
            r, context=Context(cluster="test", node="n1", pod_uid=p.uid)
        )  # what the eBPF collector knows
        for r, p in ((c.retransmit(110, p1, 30), p1), (c.retransmit(150, p2, 25), p2))
    ]
    corr = one(final([*_setup(c, [p1, p2]), loss, *by_uid]), "network_degradation")
    assert corr.confidence is Confidence.HIGH
    assert f"pods on the node ({p1.ns}/{p1.name}, {p2.ns}/{p2.name})" in corr.summary, corr.summary


def test_network_below_threshold_elsewhere_or_late_is_low_only() -> None:
    c = Cluster()
    here, there = c.pod("a", "web", "n1"), c.pod("b", "api", "n2")
    setup = _setup(c, [here, there])
    for extra in (
        [c.retransmit(110, here, 20), c.retransmit(150, here, 20)],  # 40 < 50
        [c.retransmit(110, there, 189)],  # another node
        [c.retransmit(100 + 130, here, 200)],  # after 2 minutes
    ):
        result = final([*setup, c.cni_loss(100, "n1"), *extra])
        assert significant(result) == []
        assert [(r.type, r.confidence) for r in result] == [("network_degradation", Confidence.LOW)]


def test_small_cni_samples_are_no_loss() -> None:
    c = Cluster()
    assert final([c.cni_loss(100, "n1", loss=0.001, drops=10)]) == []


def test_performance_degradation_medium_then_high_with_a_service() -> None:
    c = Cluster()
    a, b = c.pod("shop", "api", "n1"), c.pod("shop", "api", "n2")
    slow = [c.latency(100, a, 450), c.latency(130, b, 800), c.latency(170, a, 1200)]
    events = [*_setup(c, [a, b]), c.service(1, "shop", "api", "api"), *slow, c.fail(200, a, "unhealthy")]
    corr = one(final(events), "performance_degradation")
    assert corr.confidence is Confidence.MEDIUM
    assert corr.root_cause_event_id == slow[0].id
    events += [c.fail(210, b, "unhealthy"), c.service_down(230, "shop", "api", "api")]
    corr = one(final(events), "performance_degradation")
    assert corr.confidence is Confidence.HIGH


def test_fast_connects_spread_latencies_or_late_unhealthy_are_no_performance_degradation() -> None:
    c = Cluster()
    a = c.pod("shop", "api", "n1")
    fast = [c.latency(100 + 10 * i, a, 150) for i in range(4)] + [c.fail(200, a, "unhealthy")]
    assert significant(final([*_setup(c, [a]), *fast])) == []
    spread = [c.latency(100 + 65 * i, a, 500) for i in range(3)] + [c.fail(260, a, "unhealthy")]
    assert significant(final([*_setup(c, [a]), *spread])) == []
    late = [c.latency(100 + 10 * i, a, 500) for i in range(3)] + [c.fail(120 + 320, a, "unhealthy")]
    assert significant(final([*_setup(c, [a]), *late])) == []


def test_failed_rollout_is_a_high_deployment_failure_that_absorbs_the_crash_loops() -> None:
    c = Cluster()
    old = c.pod("shop", "orders", "n1", rs="orders-rs1")
    new = c.pod("shop", "orders", "n2", rs="orders-rs2")
    update = c.deployment(100, "shop", "orders", "updated", "TemplateChanged")
    events = [*_setup(c, [old]), update, c.created(104, new)]
    events += [c.restart(120 + 20 * i, new, i + 1, exit_code=2, crash=i > 0) for i in range(5)]
    events.append(c.deployment(300, "shop", "orders", "updated", "ProgressDeadlineExceeded", 2, 1))
    result = significant(final(events))
    assert [(r.type, r.confidence) for r in result] == [("deployment_failure", Confidence.HIGH)]
    assert result[0].root_cause_event_id == update.id
    assert events[-1].id in result[0].event_ids


def test_image_pull_failure_of_the_new_replicaset_is_a_deployment_failure() -> None:
    c = Cluster()
    new = c.pod("shop", "orders", "n2", rs="orders-rs2")
    update = c.deployment(100, "shop", "orders", "updated", "TemplateChanged")
    events = [update, c.created(104, new), c.fail(110, new, "unhealthy", reason="ErrImagePull")]
    assert significant(final(events)) == []  # the rollout is not failing (yet)
    events.append(c.deployment(400, "shop", "orders", "updated", "MinimumReplicasUnavailable", 2, 1))
    corr = one(final(events), "deployment_failure")
    assert corr.root_cause_event_id == update.id
    assert corr.confidence is Confidence.HIGH


def test_a_single_readiness_failure_during_a_stalled_rollout_is_a_deployment_failure() -> None:
    c = Cluster()
    new = c.pod("shop", "orders", "n2", rs="orders-rs2")
    update = c.deployment(100, "shop", "orders", "updated", "TemplateChanged")
    stalled = c.deployment(300, "shop", "orders", "updated", "ProgressDeadlineExceeded", 3, 2)
    events = [update, c.created(104, new), c.fail(150, new, "unhealthy"), stalled]
    corr = one(final(events), "deployment_failure")
    assert corr.root_cause_event_id == update.id
    assert stalled.id in corr.event_ids


def test_crash_loop_of_an_old_replicaset_pod_during_a_rollout_stays_a_crash_loop() -> None:
    c = Cluster()
    old = c.pod("shop", "orders", "n1", rs="orders-rs1")
    events = [*_setup(c, [old]), c.deployment(100, "shop", "orders", "updated", "TemplateChanged")]
    restarts = [c.restart(130 + 30 * i, old, i + 1) for i in range(4)]
    result = significant(final([*events, *restarts]))
    assert [(r.type, r.root_cause_event_id) for r in result] == [("crash_loop", restarts[0].id)]


def test_normal_lifecycle_gives_nothing() -> None:
    c = Cluster()
    old = c.pod("shop", "orders", "n1", rs="orders-rs1")
    new = c.pod("shop", "orders", "n1", rs="orders-rs2")
    events = [*_setup(c, [old]), c.service(1, "shop", "orders", "orders")]
    events += [c.deployment(100, "shop", "orders", "updated", "TemplateChanged"), c.created(102, new)]
    events += [c.pod_event(110, new, "ready", ready=True), c.pod_event(115, old, "deleted")]
    events += [
        c.deployment(120, "shop", "orders", "updated", "NewReplicaSetAvailable"),
        c.endpoints(121, "shop", "orders", 2),
    ]
    events += [c.unit(130, "n1", "kubelet", "active"), c.pod_event(140, new, "updated", ready=True)]
    assert final(events) == []


def test_a_lone_error_is_a_low_potential_issue_after_its_window() -> None:
    c = Cluster()
    down = c.service_down(100, "shop", "cart", "cart")
    result = final([down])
    assert [(r.type, r.confidence, r.root_cause_event_id) for r in result] == [
        ("potential_issue", Confidence.LOW, down.id)
    ]


def test_restart_counter_jumps_count_as_restarts() -> None:
    c = Cluster()
    p = c.pod("shop", "queue", "n1")
    sparse = [c.restart(100, p, 2), c.restart(300, p, 6, crash=True)]  # restarts 2..6: five of them
    corr = one(final(sparse), "crash_loop")
    assert corr.confidence is Confidence.HIGH
    assert corr.root_cause_event_id == sparse[0].id
