"""One publisher of cluster objects: two collectors compete for the Lease (never both leading, each
cluster object published once), a clean stop hands the Lease over at once, a killed holder's Lease
is taken over once the lease duration passed since its last renewal, never before.

No step waits a fixed time hoping something happened meanwhile: each waits for the state it needs
(the Lease read by the candidate, the new leader's list of nodes done) and a deadline is only there
for a hang."""

from __future__ import annotations

import signal
from pathlib import Path

import anyio
import pytest
from k8s_helpers import FAST_LEASE, actions, collector, collector_process, leads, until, wait_for

from tapio.events.v1 import events_pb2
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
    k8s_api: K8sApiServer, events_url: str, tmp_path: Path
) -> None:
    node_b = seed(k8s_api)
    both = 0
    async with collector(k8s_api, events_url, NODE_B, tmp_path / "b") as (_, src_b):
        async with collector(k8s_api, events_url, o.NODE, tmp_path / "a") as (_, src_a):
            await until(lambda: src_a.elector and src_b.elector, "both collectors electing")
            await until(lambda: leads(src_a) or leads(src_b), "one collector leading")
            for _ in range(40):  # 4 s: renewals happen, the leader never changes, never two
                both += bool(leads(src_a) and leads(src_b))
                await anyio.sleep(0.1)
            events = await wait_for(events_url, lambda ev: len(created_ids(ev, "nodes")) == 2)
            first = holder(k8s_api)
            leader_src = src_a if first == o.NODE else src_b
            assert leads(leader_src)
        # A left. If it led, B takes over a Lease A handed over (holder cleared), not one left to
        # expire: B's takeover replaced a record without a holder.
        await until(lambda: leads(src_b), "the second collector leading")
        if first == o.NODE:
            assert src_b.elector is not None
            assert src_b.elector.took_over is not None
            assert src_b.elector.took_over.key[0] == ""
        # The change after B's list of nodes (a new leader's first list shows what it finds as
        # `created` only, with the id the first leader published it under).
        nodes = src_b.reflectors["nodes"]
        await until(lambda: nodes.synced, "the new leader's list of nodes")
        k8s_api.store.apply(o.node_condition(node_b, "Ready", "False"))
        events = await wait_for(events_url, lambda ev: ("not_ready", NODE_B) in actions(ev, "nodes"))
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
    k8s_api: K8sApiServer, events_url: str, tmp_path: Path
) -> None:
    node_b = seed(k8s_api)
    async with collector_process(k8s_api, events_url, o.NODE, tmp_path / "a") as proc:
        await until(lambda: holder(k8s_api) == o.NODE, "the first collector holding the Lease")
        async with collector(k8s_api, events_url, NODE_B, tmp_path / "b") as (_, src_b):
            await until(lambda: src_b.elector, "the second collector electing")
            elector = src_b.elector
            assert elector is not None
            # B read the Lease A holds, twice (A renewed meanwhile or not): it waits, never takes it
            await until(lambda: elector.rounds >= 2, "the second collector reading the Lease")
            assert not leads(src_b)
            proc.send_signal(signal.SIGKILL)
            await anyio.to_thread.run_sync(proc.wait, 10)
            await until(lambda: leads(src_b), "the second collector taking the Lease over", within=30)
            # Its watches of cluster objects start once it leads: the change below must come after
            # its list of nodes (else the list shows it as the node's first state, `created` only).
            nodes = src_b.reflectors["nodes"]
            await until(lambda: nodes.synced, "the new leader's list of nodes")
            k8s_api.store.apply(o.node_condition(node_b, "MemoryPressure", "True"))
            events = await wait_for(events_url, lambda ev: any(
                e.type == "nodes" and e.k8s.reason == "MemoryPressure" for _, e in ev))  # fmt: skip
    # Taken over because A's record stopped changing for the lease duration (B's own clock), not
    # before; how long after the kill depends on B's polling only (bounded above by the deadline).
    assert elector.took_over is not None
    assert elector.took_over.key[0] == o.NODE
    assert elector.acquired_at is not None
    assert elector.acquired_at - elector.took_over.at >= FAST_LEASE["lease_duration"]
    pressure = [e for _, e in events if e.type == "nodes" and e.k8s.reason == "MemoryPressure"]
    assert len(pressure) == 1
    assert pressure[0].k8s.conditions["MemoryPressure"] == "True"
    # The new leader lists what the old one had published: the same observations, the same ids, so
    # the consumers' dedup window drops the repeats.
    created = {
        e.id for _, e in events if e.type == "nodes" and e.action == "created" and e.k8s.name == NODE_B
    }
    assert len(created) == 1
