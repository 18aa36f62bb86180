"""Events built from digests: deterministic ids, subjects' inputs, context, owners, addresses;
digests survive the state file's round trip; Lease decisions."""

from __future__ import annotations

import msgpack

from tapio.events.v1 import events_pb2
from tapio_collector_k8s.domain import digest as dg
from tapio_collector_k8s.domain.actions import Change, changes
from tapio_collector_k8s.domain.build import build, event_id
from tapio_collector_k8s.domain.lease import LeaseRecord, decide, still_leader
from tapio_collector_k8s.domain.owners import owner_chain
from tapio_testing.k8s_api import objects as o

NOW = 1_796_000_000_000_000_000


def test_event_ids_are_deterministic_and_distinct() -> None:
    assert event_id("u", "5", "restarted", "app") == event_id("u", "5", "restarted", "app")
    ids = {event_id("u", "5", "restarted", "app"), event_id("u", "6", "restarted", "app"),
           event_id("u", "5", "crash_loop", "app"), event_id("u", "5", "restarted", "envoy")}  # fmt: skip
    assert len(ids) == 4


def test_created_and_deleted_ids_do_not_depend_on_the_resource_version() -> None:
    p = o.pod("checkout", 1)
    a, b = dict(p), o.pod("checkout", 1)
    a["metadata"] = {**p["metadata"], "resourceVersion": "10"}
    b["metadata"]["resourceVersion"] = "99"
    created = Change("created", "info", "x")
    assert (
        build("pods", dg.pod(a), created, now_ns=NOW).id == build("pods", dg.pod(b), created, now_ns=NOW).id
    )


def test_pod_event_context_owners_and_addresses() -> None:
    rs = o.replicaset("checkout")
    p = o.pod("checkout", 3, rs=rs)
    d = dg.pod(p)
    chain = owner_chain(d.owner, d.namespace, d.labels, lambda *_: None)
    change = next(c for c in changes("pods", d, dg.pod(o.terminated(p, reason="OOMKilled", exit_code=137))))
    ev = build("pods", dg.pod(o.terminated(p, reason="OOMKilled", exit_code=137)), change, now_ns=NOW,
               cluster="prod-eu-1", owners=chain)  # fmt: skip
    assert (ev.type, ev.action, ev.source, ev.severity) == (
        "pods",
        "oom_killed",
        events_pb2.SOURCE_K8S,
        events_pb2.SEVERITY_ERROR,
    )
    c = ev.context
    assert (c.cluster, c.namespace, c.pod, c.node, c.container) == (
        "prod-eu-1",
        "shop",
        d.name,
        o.NODE,
        "checkout",
    )
    assert [(w.kind, w.name) for w in c.owners] == [
        ("ReplicaSet", rs["metadata"]["name"]),
        ("Deployment", "checkout"),
    ]
    assert (c.workload.kind, c.workload.name) == ("Deployment", "checkout")
    assert c.labels["app.kubernetes.io/name"] == "checkout"
    assert list(ev.k8s.pod_ips) == [p["status"]["podIP"]]
    assert ev.k8s.host_ip == "10.0.12.47"
    assert ev.k8s.termination_reason == "OOMKilled"
    assert ev.k8s.exit_code == 137
    assert ev.k8s.restart_count == 1
    assert all(len(i) == 64 for i in ev.k8s.container_ids)
    assert ev.time.ToJsonString() == "2026-11-30T08:21:00Z"  # when the container was killed


def test_owner_chain_uses_lookup_then_the_template_hash() -> None:
    d = dg.pod(o.pod("checkout", 1))
    rs_name = d.owner[1]  # type: ignore[index]
    known = {("ReplicaSet", "shop", rs_name): ("Deployment", "checkout", "uid-d")}
    assert owner_chain(d.owner, "shop", d.labels, lambda k, n, m: known.get((k, n, m)))[-1] == (
        "Deployment",
        "checkout",
        "uid-d",
    )
    assert owner_chain(d.owner, "shop", d.labels, lambda *_: None)[-1] == ("Deployment", "checkout", "")
    job = ("Job", "backup-29012345", "uid-j")
    cron = {("Job", "ops", "backup-29012345"): ("CronJob", "backup", "uid-c")}
    assert owner_chain(job, "ops", (), lambda k, n, m: cron.get((k, n, m))) == (
        job,
        ("CronJob", "backup", "uid-c"),
    )
    assert owner_chain(("DaemonSet", "node-exporter", "u"), "mon", (), lambda *_: None) == (
        ("DaemonSet", "node-exporter", "u"),
    )


def test_service_and_endpoint_events_carry_ips_ports_selector() -> None:
    svc = dg.service(o.recorded("service"))
    ev = build("services", svc, Change("created", "info", "x"), now_ns=NOW)
    assert list(ev.k8s.cluster_ips) == ["172.20.141.83", "fd00:10:96::8c1e"]
    assert [(p.port, p.target_port) for p in ev.k8s.ports] == [(5050, "5050"), (80, "http")]
    assert (ev.context.service, dict(ev.k8s.selector)) == ("checkout", {"app.kubernetes.io/name": "checkout"})
    sl = dg.endpointslice(o.recorded("endpointslice"))
    ev = build(
        "endpointslices", sl, Change("updated", "info", "x"), now_ns=NOW, service=svc, ready_endpoints=2
    )
    assert (ev.type, ev.context.service, ev.k8s.ready_endpoints) == ("endpoints", "checkout", 2)


def test_core_event_involved_object() -> None:
    p = o.pod("checkout", 1)
    ev_obj = dg.core_event(o.core_event("BackOff", p, "Back-off restarting failed container"))
    ev = build("events", ev_obj, Change("crash_loop", "error", "x", reason="BackOff"), now_ns=NOW)
    io = ev.k8s.involved_object
    assert (io.kind, io.name, io.namespace) == ("Pod", p["metadata"]["name"], "shop")
    assert (ev.context.pod, ev.context.namespace, ev.type) == (p["metadata"]["name"], "shop", "events")


def test_digests_survive_the_state_file() -> None:
    for resource, obj in [("pods", o.crash_loop(o.pod("checkout", 1))), ("nodes", o.node()),
                          ("services", o.recorded("service")), ("endpointslices", o.recorded("endpointslice")),
                          ("deployments", o.recorded("deployment")), ("replicasets", o.recorded("replicaset")),
                          ("events", o.recorded("event"))]:  # fmt: skip
        d = dg.digest(resource, obj)
        row = msgpack.unpackb(msgpack.packb(d), use_list=True)
        assert dg.from_row(resource, row) == d


def rec(holder: str, renew: str = "t1") -> LeaseRecord:
    return LeaseRecord(holder=holder, duration=15, renew_time=renew, transitions=0, rv="1")


def test_lease_decisions() -> None:
    assert decide(None, "a", None, 0).action == "create"
    assert decide(rec("a"), "a", None, 0).action == "renew"
    assert decide(rec(""), "a", None, 0).action == "takeover"
    first = decide(rec("b"), "a", None, 100.0)
    assert first.action == "wait"  # seen for the first time: its holder gets a full lease duration
    assert decide(rec("b"), "a", first.observed, 114.9).action == "wait"
    assert decide(rec("b"), "a", first.observed, 115.0).action == "takeover"
    renewed = decide(rec("b", "t2"), "a", first.observed, 114.0)
    assert renewed.action == "wait"
    assert renewed.observed is not None
    assert renewed.observed.at == 114.0
    assert still_leader(100.0, 109.9, 10.0)
    assert not still_leader(100.0, 110.0, 10.0)


def test_event_time_parsing_matches_protobuf() -> None:
    from google.protobuf.timestamp_pb2 import Timestamp

    from tapio_collector_k8s.domain.build import _parse_time

    for text in ("2026-11-30T08:21:00Z", "2026-12-01T09:30:00.123456Z", "2026-11-30T08:21:00+01:00"):
        ts = Timestamp()
        ts.FromJsonString(text)
        assert _parse_time(text) == (ts.seconds, ts.nanos)
    assert _parse_time("yesterday") is None
