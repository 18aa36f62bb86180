"""The collector against the test API server (real kubernetes client, bearer token) publishing into
a real nats-server: list then watch, field selector, a watch cut mid-stream, 410 with deletions
meanwhile, restart from the saved state, malformed/unknown/oversized objects, unreachable server."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest
from k8s_helpers import actions, collector, stream_events, wait_for

from tapio.events.v1 import events_pb2
from tapio_testing.k8s_api import K8sApiServer
from tapio_testing.k8s_api import objects as o

OTHER = "ip-10-0-31-198.eu-west-1.compute.internal"


def seed(api: K8sApiServer, pods: int = 3) -> list[o.Obj]:
    rs = o.replicaset("checkout")
    api.store.apply(o.node())
    api.store.apply(o.node(OTHER, 1))
    api.store.apply(o.deployment("checkout"))
    api.store.apply(rs)
    mine = [o.pod("checkout", i, rs=rs) for i in range(pods)]
    for p in mine:
        api.store.apply(p)
    api.store.apply(o.pod("checkout", 99, rs=rs, node=OTHER))
    api.store.apply(o.service("checkout"))
    api.store.apply(o.endpointslice("checkout", mine))
    return mine


def ready_status(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def no_duplicates(events: Sequence[tuple[str, events_pb2.Event]]) -> None:
    ids = Counter(e.id for _, e in events)
    assert [i for i, n in ids.items() if n > 1] == []


@pytest.mark.anyio
async def test_list_then_watch_publishes_semantic_events(
    k8s_api: K8sApiServer, events_url: str, tmp_path: Path
) -> None:
    pods = seed(k8s_api)
    async with collector(k8s_api, events_url, o.NODE, tmp_path / "a") as (out, _):
        events = await wait_for(events_url, lambda ev: len(actions(ev, "pods")) == 3 and actions(ev, "nodes"))
        assert sorted(actions(events, "pods")) == sorted(("created", p["metadata"]["name"]) for p in pods)
        assert await anyio.to_thread.run_sync(ready_status, out.metrics_port) == 200
        k8s_api.store.apply(o.crash_loop(pods[0]))
        k8s_api.store.apply(o.terminated(pods[1], reason="OOMKilled", exit_code=137))
        k8s_api.store.apply(o.readiness(pods[2], False))
        k8s_api.store.apply(o.endpointslice("checkout", pods, ready=False))
        events = await wait_for(events_url, lambda ev: ("unhealthy", "checkout") in actions(ev, "services")
                                and len(actions(ev, "pods")) >= 8)  # fmt: skip
    by = {(e.action, e.k8s.name): (s, e) for s, e in events}
    name0, name1, name2 = (p["metadata"]["name"] for p in pods)
    assert {a for a, n in actions(events, "pods") if n == name0} == {
        "created",
        "restarted",
        "crash_loop",
        "not_ready",
    }
    assert {a for a, n in actions(events, "pods") if n == name1} == {"created", "restarted", "oom_killed"}
    assert {a for a, n in actions(events, "pods") if n == name2} == {"created", "unhealthy"}
    subject, oom = by[("oom_killed", name1)]
    assert subject == "tapio.events.k8s.shop.pods.oom_killed"
    assert oom.k8s.termination_reason == "OOMKilled"
    assert oom.k8s.exit_code == 137
    assert oom.context.node == o.NODE
    assert oom.context.workload.name == "checkout"
    assert [(w.kind, w.name) for w in oom.context.owners] == [
        ("ReplicaSet", pods[1]["metadata"]["ownerReferences"][0]["name"]),
        ("Deployment", "checkout"),
    ]
    assert list(oom.k8s.pod_ips) == [pods[1]["status"]["podIP"]]
    assert oom.k8s.host_ip == "10.0.12.47"
    assert oom.context.container_id.startswith("containerd://")
    assert len(oom.k8s.container_ids) == 2
    svc_subject, svc = by[("unhealthy", "checkout")]
    assert svc_subject == "tapio.events.k8s.shop.services.unhealthy"
    assert svc.k8s.ready_endpoints == 0
    assert dict(svc.k8s.selector) == {"app.kubernetes.io/name": "checkout"}
    _, _created_svc = by.get(("created", "checkout"), (None, None))
    services = [e for _, e in events if e.type == "services" and e.action == "created"]
    assert list(services[0].k8s.cluster_ips) == ["172.20.141.83"]
    assert [(p.name, p.port, p.protocol, p.target_port) for p in services[0].k8s.ports] == [
        ("grpc", 5050, "TCP", "5050"), ("http", 80, "TCP", "http")]  # fmt: skip
    assert all(
        e.context.node == o.NODE for _, e in events if e.type == "pods"
    )  # the other node's pod: not ours
    no_duplicates(events)
    assert any("fieldSelector=spec.nodeName%3D" in path for _, path in k8s_api.requests)


@pytest.mark.anyio
async def test_watch_cut_mid_stream_resumes_without_loss_or_repeat(
    k8s_api: K8sApiServer, events_url: str, tmp_path: Path
) -> None:
    pods = seed(k8s_api)
    async with collector(k8s_api, events_url, o.NODE, tmp_path / "a"):
        await wait_for(events_url, lambda ev: len(actions(ev, "pods")) == 3)
        for round_ in range(3):
            k8s_api.break_watches()
            pods[0] = o.terminated(pods[0], at=f"2026-11-30T09:0{round_}:00Z")
            k8s_api.store.apply(pods[0])
        events = await wait_for(
            events_url,
            lambda ev: actions(ev, "pods").count(("restarted", pods[0]["metadata"]["name"])) >= 3,
        )
        await anyio.sleep(1.0)  # nothing more comes
        events = await stream_events(events_url)
    assert actions(events, "pods").count(("restarted", pods[0]["metadata"]["name"])) == 3
    no_duplicates(events)


@pytest.mark.anyio
async def test_410_relist_emits_updates_and_deletions_of_the_time_away(
    k8s_api: K8sApiServer, events_url: str, tmp_path: Path
) -> None:
    pods = seed(k8s_api, pods=4)
    names = [p["metadata"]["name"] for p in pods]
    async with collector(k8s_api, events_url, o.NODE, tmp_path / "a"):
        await wait_for(events_url, lambda ev: len(actions(ev, "pods")) == 4)
        k8s_api.stop()  # unreachable: the changes below happen while the collector cannot see them
        k8s_api.store.delete("pods", "shop", names[0])
        k8s_api.store.delete("pods", "shop", names[1])
        k8s_api.store.apply(o.crash_loop(pods[2]))
        k8s_api.store.compact()  # the watch cannot resume: 410 Gone
        k8s_api.start()
        events = await wait_for(events_url, lambda ev: ("crash_loop", names[2]) in actions(ev, "pods")
                                and actions(ev, "pods").count(("deleted", names[0])) == 1
                                and ("deleted", names[1]) in actions(ev, "pods"))  # fmt: skip
    pods_seen = actions(events, "pods")
    assert pods_seen.count(("created", names[3])) == 1  # relisting re-emits nothing unchanged
    assert ("deleted", names[3]) not in pods_seen
    no_duplicates(events)


@pytest.mark.anyio
async def test_restart_resumes_from_saved_state(
    k8s_api: K8sApiServer, events_url: str, tmp_path: Path
) -> None:
    pods = seed(k8s_api)
    names = [p["metadata"]["name"] for p in pods]
    data = tmp_path / "a"
    async with collector(k8s_api, events_url, o.NODE, data):
        await wait_for(events_url, lambda ev: len(actions(ev, "pods")) == 3)
    # Stopped: changes meanwhile, then a restart resumes its watch from the saved resourceVersion.
    assert (data / "k8s-collector" / "watch-state" / "pods.state").is_file()
    k8s_api.store.apply(o.crash_loop(pods[0]))
    k8s_api.store.delete("pods", "shop", names[1])
    seen_requests = len(k8s_api.requests)
    async with collector(k8s_api, events_url, o.NODE, data):
        events = await wait_for(events_url, lambda ev: ("crash_loop", names[0]) in actions(ev, "pods")
                                and ("deleted", names[1]) in actions(ev, "pods"))  # fmt: skip
        await anyio.sleep(1.0)
        events = await stream_events(events_url)
    pods_seen = actions(events, "pods")
    assert pods_seen.count(("created", names[2])) == 1
    assert pods_seen.count(("created", names[0])) == 1
    no_duplicates(events)
    pod_requests = [p for _, p in k8s_api.requests[seen_requests:] if "/pods?" in p]
    assert pod_requests
    assert "watch=true" in pod_requests[0]


@pytest.mark.anyio
async def test_malformed_unknown_and_oversized_objects_are_counted_and_skipped(
    k8s_api: K8sApiServer, events_url: str, tmp_path: Path
) -> None:
    pods = seed(k8s_api)
    async with collector(k8s_api, events_url, o.NODE, tmp_path / "a", max_object_bytes=32768) as (out, _):
        await wait_for(events_url, lambda ev: len(actions(ev, "pods")) == 3)
        k8s_api.store.inject("pods", b'{"type":"MODIFIED","object":{"kind":"Pod","metadata":{"na')
        k8s_api.store.inject(
            "pods",
            b'{"type":"ADDED","object":{"kind":"Widget","apiVersion":"x/v1","metadata":{"name":"w","uid":"1"}}}',
        )
        k8s_api.store.inject("pods", b'{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"no-uid"}}}')
        big = o.pod("checkout", 50)
        big["metadata"]["annotations"]["blob"] = "x" * 40000
        k8s_api.store.apply(big)
        k8s_api.store.apply(o.crash_loop(pods[0]))  # still watching after all that
        await wait_for(
            events_url, lambda ev: ("crash_loop", pods[0]["metadata"]["name"]) in actions(ev, "pods")
        )
        text = out.metrics.exposition().decode()
    assert 'tapio_k8s_collector_events_dropped_total{reason="malformed"} 2.0' in text
    assert 'tapio_k8s_collector_events_dropped_total{reason="unknown_kind"} 1.0' in text
    assert 'tapio_k8s_collector_events_dropped_total{reason="oversized"} 1.0' in text


@pytest.mark.anyio
async def test_unreachable_api_server_backs_off_not_ready_one_line(
    k8s_api: K8sApiServer, events_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pods = seed(k8s_api)
    k8s_api.stop()
    caplog.set_level(logging.INFO, logger="tapio_collector_k8s")
    async with collector(k8s_api, events_url, o.NODE, tmp_path / "a", backoff_max=1.0) as (out, _):
        await anyio.sleep(3.0)
        assert await anyio.to_thread.run_sync(ready_status, out.metrics_port) == 503
        k8s_api.start()
        await wait_for(events_url, lambda ev: len(actions(ev, "pods")) == 3)
        with anyio.fail_after(10):
            while await anyio.to_thread.run_sync(ready_status, out.metrics_port) != 200:  # noqa: ASYNC110
                await anyio.sleep(0.1)
    down = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(down) == 1, [r.getMessage() for r in down]
    assert "127.0.0.1" in str(down[0].__dict__.get("error"))
    assert [r for r in caplog.records if r.getMessage() == "API server reachable again"]
    assert len(pods) == 3


@pytest.mark.anyio
async def test_service_losing_its_endpoints_right_after_a_restart_is_unhealthy(
    k8s_api: K8sApiServer, events_url: str, tmp_path: Path
) -> None:
    pods = seed(k8s_api)
    data = tmp_path / "a"
    async with collector(k8s_api, events_url, o.NODE, data):
        await wait_for(events_url, lambda ev: ("created", "checkout") in actions(ev, "services"))
    # The restored state knows the slice had ready endpoints: losing them now is a transition.
    async with collector(k8s_api, events_url, o.NODE, data):
        k8s_api.store.apply(o.endpointslice("checkout", pods, ready=False))
        events = await wait_for(events_url, lambda ev: ("unhealthy", "checkout") in actions(ev, "services"))
    svc = next(e for _, e in events if e.type == "services" and e.action == "unhealthy")
    assert svc.k8s.ready_endpoints == 0
    assert list(svc.k8s.cluster_ips) == ["172.20.141.83"]
