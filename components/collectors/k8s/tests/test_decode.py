"""Decoding of raw list pages and watch lines (typed msgspec, only the fields read): the same
digests as from the parsed objects, what realistic objects hold, and every odd line classified."""

from __future__ import annotations

import json

import pytest

from tapio_collector_k8s.domain import decode
from tapio_collector_k8s.domain import digest as dg
from tapio_testing.k8s_api import objects as o

MAX = 1 << 20
POD = o.pod("checkout", 1)
RS = o.replicaset("checkout")
DEPLOY = o.deployment("checkout")
SAMPLES = {
    "pods": [POD, o.crash_loop(POD), o.terminated(POD, reason="OOMKilled", exit_code=137), o.evicted(POD), o.readiness(POD, False)],
    "nodes": [o.node(), o.node_condition(o.node(), "Ready", "False")],
    "services": [o.service("checkout")],
    "endpointslices": [o.endpointslice("checkout", [POD]), o.endpointslice("checkout", [POD], ready=False)],
    "deployments": [DEPLOY, o.rollout(DEPLOY, "registry.example.com/shop/checkout:v2"), o.stalled(DEPLOY)],
    "replicasets": [RS],
    "events": [o.core_event("BackOff", POD, "back-off restarting"), o.core_event("OOMKilling", o.node(), "oom")],
}  # fmt: skip


def line(kind: str, obj: object) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode()


@pytest.mark.parametrize("resource", sorted(SAMPLES))
def test_watch_lines_and_list_pages_give_the_digests_of_the_objects(resource: str) -> None:
    objs = SAMPLES[resource]
    for obj in objs:
        assert decode.watch_line(resource, line("MODIFIED", obj), MAX) == (
            "MODIFIED",
            dg.digest(resource, obj),
        )
    body = json.dumps(
        {"kind": "List", "metadata": {"resourceVersion": "77", "continue": "c2"}, "items": objs}
    )
    rv, cont, digests, bad = decode.list_page(resource, body.encode())
    assert (rv, cont, bad) == ("77", "c2", {})
    assert digests == [dg.digest(resource, obj) for obj in objs]


def test_a_realistic_pod_digest_holds_what_the_events_need() -> None:
    d = dg.digest("pods", o.terminated(POD, reason="OOMKilled", exit_code=137))
    assert isinstance(d, dg.Pod)
    assert (d.namespace, d.node, d.phase) == ("shop", o.NODE, "Running")
    assert d.pod_ips
    assert d.host_ip
    assert d.created
    assert d.owner is not None
    assert d.owner[0] == "ReplicaSet"
    app = d.containers[0]
    assert (app.term_reason, app.term_exit, app.restarts) == ("OOMKilled", 137, 1)
    assert app.id.startswith("containerd://")
    assert app.image
    assert dict(d.labels)["pod-template-hash"]
    svc = dg.digest("services", o.service("checkout"))
    assert isinstance(svc, dg.Service)
    assert svc.cluster_ips == ("172.20.141.83",)
    assert svc.ports
    assert svc.selector


def test_odd_watch_lines_are_classified() -> None:
    assert decode.watch_line("pods", b'{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"9"}}}', MAX) == ("BOOKMARK", "9")  # fmt: skip
    gone = {"kind": "Status", "status": "Failure", "message": "too old resource version", "code": 410}
    assert decode.watch_line("pods", line("ERROR", gone), MAX) == ("GONE", "too old resource version")
    kind, text = decode.watch_line("pods", line("ERROR", {**gone, "code": 500, "message": "etcd"}), MAX)
    assert kind == "ERROR"
    assert "etcd" in text
    assert decode.watch_line("pods", line("RESYNC", POD), MAX)[0] == "unknown_type"
    assert decode.watch_line("pods", line("ADDED", o.node()), MAX)[0] == "unknown_kind"
    assert (
        decode.watch_line("pods", b'{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"na', MAX)[0]
        == "malformed"
    )
    assert (
        decode.watch_line("pods", line("ADDED", {"kind": "Pod", "metadata": {"name": "x"}}), MAX)[0]
        == "malformed"
    )
    restarts = {"kind": "Pod", "metadata": {"name": "x", "uid": "u"},
                "status": {"containerStatuses": [{"restartCount": "many"}]}}  # fmt: skip
    assert decode.watch_line("pods", line("ADDED", restarts), MAX)[0] == "malformed"
    assert decode.watch_line("pods", line("ADDED", POD), 1024)[0] == "oversized"
    assert decode.watch_line("pods", b'{"type":"BOOKMARK","object":{"metadata":{}}}', MAX)[0] == "malformed"


def test_unreadable_items_of_a_list_are_counted_the_rest_kept() -> None:
    items = [POD, {"kind": "Pod", "metadata": {"name": "x"}}, o.node(),
             {"kind": "Pod", "metadata": {"name": "y", "uid": "u", "labels": {"a": 1}}}]  # fmt: skip
    rv, cont, digests, bad = decode.list_page(
        "pods", json.dumps({"metadata": {"resourceVersion": "5"}, "items": items}).encode()
    )
    assert (rv, cont) == ("5", None)
    assert digests == [dg.digest("pods", POD)]
    assert bad == {"malformed": 2, "unknown_kind": 1}
    with pytest.raises(decode.BadList):
        decode.list_page("pods", b'{"kind":"Status","code":500}')
    with pytest.raises(decode.BadList):
        decode.list_page("pods", b"<html>")
