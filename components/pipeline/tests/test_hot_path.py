"""The hot path (views, original bytes, compiled plans, cached enrichment) gives exactly what the
message path gives (learn, enrich, decide, serialize each event): same events on the same subjects."""

from __future__ import annotations

import pytest

from tapio.events.v1 import events_pb2
from tapio_common.model.convert import event_from_json, event_to_proto
from tapio_common.scenarios import load_scenarios
from tapio_jetstream import DecodeError
from tapio_pipeline.enrich import PodIndex
from tapio_pipeline.plans import Router
from tapio_pipeline.routing import reference_route, route
from tapio_pipeline.rules import REDACTED, load_rules
from tapio_pipeline.views import decode_message
from tapio_publisher.codec import ENCODING_BATCH, ENCODING_HEADER
from tapio_publisher.subjects import processed_subject

RULES = """\
destinations: [siem, archive, metrics]
default: [archive]
rules:
  - {name: no-debug, match: {severity: debug}, drop: true}
  - {name: exec-sampled, match: {source: ebpf, type: process_exec}, sample: 3}
  - {name: hide-secrets, match: {source: [ebpf, systemd]}, redact: [cmdline, env]}
  - {name: security, match: {min_severity: error, namespace: ["team-*", payments]}, route: [siem, archive]}
  - {name: web, match: {labels: {app: web, tier: "front*"}, node: "node-?"}, route: [metrics], final: true}
  - {name: after-web, match: {labels: {app: web}}, route: [siem]}
  - {name: restarts, match: {action: [restarted, crash_loop]}, route: [siem]}
"""
STATIC_RULES = """\
destinations: [siem, archive]
default: [archive]
rules:
  - {name: no-debug, match: {severity: debug}, drop: true}
  - {name: execs, match: {source: ebpf, type: process_exec}, sample: 10}
  - {name: hide, match: {source: [ebpf, systemd]}, redact: [cmdline, env]}
  - {name: security, match: {min_severity: warning}, route: [siem, archive]}
"""
"""Rules that test no context: most plans constant, the redacting ones known but for the keys."""
BATCH = {ENCODING_HEADER: ENCODING_BATCH}


def pod(
    uid: str, name: str, ns: str, labels: dict[str, str], cids: tuple[str, ...], node: str = "node-1"
) -> events_pb2.Event:
    return events_pb2.Event(
        id=f"pod-{uid}-{len(labels)}",
        source=events_pb2.SOURCE_K8S,
        type="pods",
        action="updated",
        severity=events_pb2.SEVERITY_INFO,
        context=events_pb2.Context(
            namespace=ns,
            pod=name,
            pod_uid=uid,
            node=node,
            labels=labels,
            workload=events_pb2.Workload(kind="Deployment", name=name.rsplit("-", 1)[0]),
            owners=[events_pb2.OwnerRef(kind="ReplicaSet", name=f"{name}-rs", uid=f"rs-{uid}")],
        ),
        k8s=events_pb2.K8sEvent(kind="Pod", name=name, uid=uid, container_ids=list(cids)),
    )


def kernel(i: int, severity: int = events_pb2.SEVERITY_WARNING, **ctx: object) -> events_pb2.Event:
    return events_pb2.Event(
        id=f"k-{i}",
        source=events_pb2.SOURCE_EBPF,
        type="process_exec" if i % 4 == 0 else "oom_kill",
        action="exec",
        severity=severity,  # type: ignore[arg-type]
        context=events_pb2.Context(**ctx),  # type: ignore[arg-type]
        kernel=events_pb2.KernelEvent(pid=i, comm="java"),
        attributes={"cmdline": "java -Dsecret=x", "keep": "yes"} if i % 2 else {"keep": "no"},
    )


def synthetic() -> list[events_pb2.Event]:
    """Pods learnt, relabelled, replaced under the same name; kernel events by container id,
    cgroup id, uid and name, some with their own labels or owners; a node rule; redactions."""
    out = [
        kernel(900, container_id="c7"),  # its pod not known yet: nothing to add (cached so)
        pod("u-7", "job-1", "team-b", {"app": "job"}, ("containerd://c7",)),
        kernel(901, container_id="c7"),  # the same context: now enriched (no remap happened)
        pod("u-1", "web-1", "team-a", {"app": "web", "tier": "frontend"}, ("containerd://c1",)),
        pod("u-2", "db-1", "payments", {"app": "db"}, ("containerd://c2",), node="node-12"),
    ]
    for i in range(40):
        out.append(kernel(i, container_id="c1", pid=i))
        out.append(kernel(100 + i, events_pb2.SEVERITY_ERROR, container_id="c2", cgroup_id=77))
        out.append(kernel(200 + i, events_pb2.SEVERITY_CRITICAL, cgroup_id=77))
        out.append(kernel(300 + i, namespace="team-a", pod="web-1", labels={"tier": "back"}))
        out.append(kernel(400 + i, pod_uid="u-2", owners=[events_pb2.OwnerRef(kind="Job", name="j")]))
        out.append(kernel(500 + i, container_id="unknown"))
        if i == 10:  # relabelled: later events see the new labels
            out.append(
                pod(
                    "u-1", "web-1", "team-a", {"app": "web", "tier": "front2", "x": "y"}, ("containerd://c1",)
                )
            )
        if i == 20:  # the same name, a new pod (a StatefulSet's replacement)
            out.append(pod("u-9", "web-1", "team-a", {"app": "api"}, ("containerd://c9",)))
    return out


def scenario_events() -> list[events_pb2.Event]:
    return [event_to_proto(event_from_json(line)) for s in load_scenarios() for line in s.lines]


def hot(
    rules_text: str, events: list[events_pb2.Event], per_message: int
) -> dict[str, list[events_pb2.Event]]:
    router, index = Router(load_rules(rules_text), processed_subject), PodIndex()
    out: dict[str, list[events_pb2.Event]] = {}
    for start in range(0, len(events), per_message):
        payload = events_pb2.EventBatch(events=events[start : start + per_message]).SerializeToString()
        for subject, datas in route(router, index, *decode_message(BATCH, payload)).groups.items():
            out.setdefault(subject, []).extend(events_pb2.Event.FromString(d) for d in datas)
    return out


@pytest.mark.parametrize("per_message", [1, 7, 1000])
@pytest.mark.parametrize("source", ["synthetic", "scenarios"])
@pytest.mark.parametrize("rules", [RULES, STATIC_RULES], ids=["context-rules", "static-rules"])
def test_hot_path_routes_like_the_message_path(rules: str, source: str, per_message: int) -> None:
    events = synthetic() if source == "synthetic" else scenario_events()
    copies = [events_pb2.Event.FromString(e.SerializeToString()) for e in events]
    want = reference_route(load_rules(rules), PodIndex(), copies, processed_subject)
    got = hot(rules, events, per_message)
    assert sorted(got) == sorted(want)
    for subject, expected in want.items():
        assert got[subject] == expected, subject
    assert sum(map(len, got.values())) > len(events) / 4  # something was routed


def test_enrichment_follows_the_index_relabel_and_replacement() -> None:
    got = hot(RULES, synthetic(), 1000)
    ebpf = {e.id: e for s, events in got.items() if ".ebpf." in s for e in events}.values()
    by_container = [e for e in ebpf if e.context.container_id == "c1"]
    assert {e.context.labels["tier"] for e in by_container} == {"frontend", "front2"}
    by_name = [e for e in ebpf if 300 <= int(e.id[2:]) < 400]
    assert {e.context.pod_uid for e in by_name} == {"u-1", "u-9"}
    assert all(e.context.labels["tier"] == "back" for e in by_name)  # the event's own label wins


def test_unchanged_events_keep_their_bytes_and_redacted_values_leave_them() -> None:
    events = synthetic()
    payload = events_pb2.EventBatch(events=events).SerializeToString()
    routed = route(Router(load_rules(RULES), processed_subject), PodIndex(), *decode_message(BATCH, payload))
    pods = routed.groups["tapio.processed.k8s.archive"]
    assert pods[0] == events[1].SerializeToString()  # a k8s event is forwarded as it came
    for datas in routed.groups.values():
        for data in datas:
            assert b"secret" not in data
    assert routed.redacted > 0
    redacted = [
        e
        for e in map(events_pb2.Event.FromString, routed.groups["tapio.processed.ebpf.archive"])
        if "cmdline" in e.attributes
    ]
    assert redacted
    assert all(e.attributes["cmdline"] == REDACTED for e in redacted)


def test_static_rules_make_constant_plans_and_context_rules_do_not() -> None:
    router = Router(load_rules(RULES), processed_subject)
    assert router.key_fields == ("source", "type", "action", "severity")
    debug = router.plan((events_pb2.SOURCE_K8S, "pods", "updated", events_pb2.SEVERITY_DEBUG))
    assert debug.constant is not None
    assert (debug.constant.dropped, debug.constant.rule) == ("rule", "no-debug")
    restart = router.plan((events_pb2.SOURCE_K8S, "pods", "restarted", events_pb2.SEVERITY_INFO))
    assert restart.constant is None  # the labels rules need the context
    assert restart.needs_context
    quick = Router(load_rules(STATIC_RULES), processed_subject)
    oom = quick.plan((events_pb2.SOURCE_EBPF, "oom_kill", events_pb2.SEVERITY_CRITICAL))
    assert oom.constant is None
    assert oom.redact_only is not None
    assert oom.redact_only[0].destinations == ("siem", "archive")
    assert [k for k, _ in oom.redact_only[1]] == ["cmdline", "env"]
    simple = Router(
        load_rules("destinations: [a]\nrules:\n  - {name: r, match: {severity: info}, route: [a]}\n"),
        processed_subject,
    )
    assert simple.key_fields == ("source", "type", "severity")
    plan = simple.plan((events_pb2.SOURCE_CNI, "interface", events_pb2.SEVERITY_INFO))
    assert plan.constant is not None
    assert plan.constant.subjects == ("tapio.processed.cni.a",)
    error = simple.plan((events_pb2.SOURCE_CNI, "interface", events_pb2.SEVERITY_ERROR)).constant
    assert error is not None
    assert error.dropped == "unrouted"


def routed(headers: dict[str, str], payload: bytes) -> list[str]:
    return route(
        Router(load_rules(RULES), processed_subject), PodIndex(), *decode_message(headers, payload)
    ).ids


@pytest.mark.parametrize(
    ("source", "type_"),
    [
        (events_pb2.SOURCE_EBPF, "oom_kill"),  # enriched
        (events_pb2.SOURCE_EBPF, "process_exec"),  # sampled
        (events_pb2.SOURCE_K8S, "pods"),  # learnt
        (events_pb2.SOURCE_K8S, "services"),  # its own context
    ],
)
def test_a_malformed_context_is_undecodable(source: int, type_: str) -> None:
    """The views keep the context as bytes: routing parses each distinct one (cached), so a bad
    one is refused like the contract's parse refuses it, whatever the event's plan."""
    good = events_pb2.Event(id="e", source=source, type=type_).SerializeToString()  # type: ignore[arg-type]
    bad_event = good + b"\x42\x03\xff\xff\xff"  # a context field that is no Context
    with pytest.raises(Exception):  # noqa: B017, PT011 - the contract's own parser refuses it
        events_pb2.Event.FromString(bad_event)
    payload = events_pb2.EventBatch(events=[events_pb2.Event(id="a")]).SerializeToString()
    payload += b"\x0a" + bytes([len(bad_event)]) + bad_event
    with pytest.raises(DecodeError):
        routed(BATCH, payload)
    with pytest.raises(DecodeError):
        routed({}, bad_event)
    assert routed({}, good) == ["e"]
    with pytest.raises(DecodeError):
        routed({}, good + b"\x4a\x01")  # truncated: the views' parse refuses it too


def test_only_routes_the_first_event_of_each_id_given() -> None:
    """What the handler routes again when the runtime's dedup window took events out."""
    events = synthetic()[:12]
    events.insert(5, events[3])  # a repeat within the message
    payload = events_pb2.EventBatch(events=events).SerializeToString()
    router, index = Router(load_rules(RULES), processed_subject), PodIndex()
    keep = {events[3].id, events[7].id, events[9].id}
    out = route(router, index, *decode_message(BATCH, payload), only=set(keep))
    assert out.ids == [events[3].id, events[7].id, events[9].id]
    assert sum(out.outcomes.values()) == 3
