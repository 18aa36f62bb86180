"""One publisher of cluster objects: two collectors compete for the Lease (never both leading, each
cluster object published once), a clean stop hands the Lease over at once, a killed holder's Lease
is taken over within the lease duration."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from k8s_helpers import actions, collector, leads, provision, wait_for

from tapio.events.v1 import events_pb2
from tapio_testing.jetstream import JetStreamServer
from tapio_testing.k8s_api import ApiError, K8sApiServer
from tapio_testing.k8s_api import objects as o

NODE_B = "ip-10-0-31-198.eu-west-1.compute.internal"


def seed(api: K8sApiServer) -> o.Obj:
    api.store.apply(o.node(o.NODE, 0))
    node_b = api.store.apply(o.node(NODE_B, 1))
    rs = o.replicaset("cart")
    api.store.apply(rs)
    api.store.apply(o.pod("cart", 1, rs=rs, node=o.NODE))
    api.store.apply(o.pod("cart", 2, rs=rs, node=NODE_B))
    return node_b


def created_ids(events: list[tuple[str, events_pb2.Event]], type_: str) -> set[str]:
    return {e.id for _, e in events if e.type == type_ and e.action == "created"}


def holder(api: K8sApiServer) -> str:
    try:
        lease = api.store.get("leases", "default", "tapio-k8s-collector").obj
    except ApiError:  # no Lease yet
        return ""

    return str(lease["spec"].get("holderIdentity") or "")


@pytest.mark.anyio
async def test_two_collectors_never_both_lead_and_hand_over_on_stop(
    k8s_api: K8sApiServer, jetstream: JetStreamServer, tmp_path: Path
) -> None:
    await provision(jetstream.url)
    node_b = seed(k8s_api)
    both = 0
    async with collector(k8s_api, jetstream.url, NODE_B, tmp_path / "b") as (_, src_b):
        async with collector(k8s_api, jetstream.url, o.NODE, tmp_path / "a") as (_, src_a):
            with anyio.fail_after(60):  # generous: the machine may be loaded; polled, so no slower
                while not (src_a.elector and src_b.elector):  # noqa: ASYNC110 - polling
                    await anyio.sleep(0.05)
                while not (leads(src_a) or leads(src_b)):  # noqa: ASYNC110 - polling
                    await anyio.sleep(0.05)
            for _ in range(40):  # 4 s: renewals happen, the leader never changes, never two
                both += bool(leads(src_a) and leads(src_b))
                await anyio.sleep(0.1)
            events = await wait_for(jetstream.url, lambda ev: len(created_ids(ev, "nodes")) == 2)
            first = holder(k8s_api)
            leader_src = src_a if first == o.NODE else src_b
            assert leads(leader_src)
        # A left. If it led, B takes over at once (the Lease was handed over, not left to expire).
        with anyio.fail_after(4.0 - 0.5):  # before the lease could have expired: handed over
            while not leads(src_b):  # noqa: ASYNC110
                await anyio.sleep(0.05)
        k8s_api.store.apply(o.node_condition(node_b, "Ready", "False"))
        events = await wait_for(jetstream.url, lambda ev: ("not_ready", NODE_B) in actions(ev, "nodes"))
    assert both == 0
    # Each cluster object once; a repeat (a hand-over under load) would carry the same id.
    assert sorted(set(actions(events, "nodes"))) == sorted(
        [("created", o.NODE), ("created", NODE_B), ("not_ready", NODE_B)]
    )
    assert len(created_ids(events, "nodes")) == 2
    assert sorted(e.context.node for _, e in events if e.type == "pods") == sorted([o.NODE, NODE_B])
    assert holder(k8s_api) == ""  # B handed over too on its way out


@pytest.mark.anyio
async def test_killed_holder_is_taken_over_within_the_lease_duration(
    k8s_api: K8sApiServer, jetstream: JetStreamServer, tmp_path: Path
) -> None:
    await provision(jetstream.url)
    node_b = seed(k8s_api)
    kc = k8s_api.kubeconfig(tmp_path / "kc.json")
    proc = await anyio.to_thread.run_sync(lambda: subprocess.Popen(
        [sys.executable, "-m", "tapio_collector_k8s", "--kubeconfig", str(kc), "--node-name", o.NODE,
         "--nats-url", jetstream.url, "--metrics-port", "0", "--data-dir", str(tmp_path / "a"),
         "--lease-duration", "4", "--renew-interval", "0.5", "--renew-deadline", "3"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ))  # fmt: skip
    try:
        with anyio.fail_after(60):
            while holder(k8s_api) != o.NODE:  # noqa: ASYNC110 - polling the test server
                await anyio.sleep(0.1)
        async with collector(k8s_api, jetstream.url, NODE_B, tmp_path / "b") as (_, src_b):
            await anyio.sleep(1.5)
            assert not leads(src_b)
            proc.send_signal(signal.SIGKILL)
            await anyio.to_thread.run_sync(proc.wait, 10)
            killed = time.monotonic()
            with anyio.fail_after(30):  # measured below; polled, so a deadline only for a hang
                while not leads(src_b):  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            took = time.monotonic() - killed
            k8s_api.store.apply(o.node_condition(node_b, "MemoryPressure", "True"))
            events = await wait_for(jetstream.url, lambda ev: any(
                e.type == "nodes" and e.k8s.reason == "MemoryPressure" for _, e in ev))  # fmt: skip
    finally:
        if proc.poll() is None:
            proc.kill()
    # Within the lease duration, plus a renewal round and slack for a loaded machine.
    assert took <= 4.0 + 0.5 + 5.0
    pressure = [e for _, e in events if e.type == "nodes" and e.k8s.reason == "MemoryPressure"]
    assert len(pressure) == 1
    assert pressure[0].k8s.conditions["MemoryPressure"] == "True"
    # The new leader lists what the old one had published: the same observations, the same ids, so
    # the consumers' dedup window drops the repeats.
    created = {
        e.id for _, e in events if e.type == "nodes" and e.action == "created" and e.k8s.name == NODE_B
    }
    assert len(created) == 1
