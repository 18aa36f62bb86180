"""A collector killed (SIGKILL: no last checkpoint) and restarted after longer than JetStream's
duplicate window, the API server having compacted meanwhile: its journal marks say what was
confirmed, so nothing is emitted twice and what changed while it was away is emitted once. And a
collector killed before its first mark: its notes of what it emitted as `created` make the change
made while it was down arrive, once."""

from __future__ import annotations

import subprocess
from collections import Counter
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import anyio
import nats
import pytest
from k8s_helpers import actions, collector, collector_process, stream_events, wait_for

from tapio_collector_k8s.adapters.state import StateStore
from tapio_testing.k8s_api import K8sApiServer
from tapio_testing.k8s_api import objects as o
from tapio_testing.wait import eventually

WINDOW = 1.0  # seconds: JetStream's duplicate window, shortened so the test can outlast it
CLUSTER = ("nodes", "services", "endpointslices", "deployments", "replicasets")


async def short_duplicate_window(url: str) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        config = (await js.stream_info("TAPIO_EVENTS")).config
        config.duplicate_window = WINDOW
        await js.update_stream(config)
    finally:
        await nc.close()


def seed(api: K8sApiServer) -> list[o.Obj]:
    rs = o.replicaset("checkout")
    for obj in (o.node(), o.deployment("checkout"), rs, o.service("checkout")):
        api.store.apply(obj)
    mine = [o.pod("checkout", i, rs=rs) for i in range(3)]
    for p in mine:
        api.store.apply(p)
    api.store.apply(o.endpointslice("checkout", mine))
    return mine


def collector_killed_at_exit(
    api: K8sApiServer, url: str, data: Path, mark_interval: str
) -> AbstractAsyncContextManager[subprocess.Popen[bytes]]:
    """The collector as a process marking every `mark_interval` s, no snapshot due (1 h), SIGKILLed
    when the block ends."""
    flags = ("--mark-interval", mark_interval, "--checkpoint-interval", "3600")
    return collector_process(api, url, o.NODE, data, *flags)


def saved_in_step(api: K8sApiServer, data: Path) -> bool:
    """The collector's saved state (snapshot + journal) holds every object as the server has it."""
    state = StateStore(data / "k8s-collector" / "watch-state").load_all(("pods", *CLUSTER))
    for resource in ("pods", *CLUSTER):
        want = {
            s.obj["metadata"]["uid"]: s.obj["metadata"]["resourceVersion"]
            for s in api.store.objects[resource].values()
        }
        have = {uid: d.rv for uid, d in state.get(resource, ("", {}))[1].items()}
        if have != want:
            return False
    return True


@pytest.mark.anyio
async def test_killed_and_restarted_after_the_duplicate_window_emits_nothing_twice(
    k8s_api: K8sApiServer, events_url: str, tmp_path: Path
) -> None:
    await short_duplicate_window(events_url)
    pods = seed(k8s_api)
    names = [p["metadata"]["name"] for p in pods]
    data = tmp_path / "a"
    async with collector_killed_at_exit(k8s_api, events_url, data, "0.2"):
        await wait_for(events_url, lambda ev: len(actions(ev, "pods")) == 3 and actions(ev, "deployments"))
        k8s_api.store.apply(o.crash_loop(pods[0]))
        await wait_for(events_url, lambda ev: ("crash_loop", names[0]) in actions(ev, "pods"))
        # No snapshot is due (checkpoint interval 1 h; the one after the first list is older):
        # only the journal marks can hold the crash loop.
        await eventually(lambda: saved_in_step(k8s_api, data), "the journal holding every object", within=30)
        snapshot = StateStore(data / "k8s-collector" / "watch-state").load_snapshot("pods")
        crashed = k8s_api.store.get("pods", "shop", names[0]).obj["metadata"]
        assert snapshot is None or snapshot[2][crashed["uid"]].rv != crashed["resourceVersion"]
    before = await stream_events(events_url)
    # Away for longer than the duplicate window; the API server compacts (the restart gets 410).
    k8s_api.store.apply(o.terminated(pods[1], reason="OOMKilled", exit_code=137))
    k8s_api.store.delete("pods", "shop", names[2])
    k8s_api.store.compact()
    await anyio.sleep(WINDOW * 2)
    async with collector(k8s_api, events_url, o.NODE, data, mark_interval=0.2, **{"lease_duration": 4.0}):
        await wait_for(events_url, lambda ev: ("oom_killed", names[1]) in actions(ev, "pods")
                       and ("deleted", names[2]) in actions(ev, "pods"))  # fmt: skip
        await anyio.sleep(1.5)  # anything else it would emit
    events = await stream_events(events_url)
    ids = Counter(e.id for _, e in events)
    assert [(e.action, e.k8s.name) for _, e in events if ids[e.id] > 1] == []
    new = [(e.action, e.k8s.name) for _, e in events[len(before) :]]
    assert sorted(new) == sorted([("restarted", names[1]), ("oom_killed", names[1]), ("deleted", names[2])])


@pytest.mark.anyio
async def test_killed_before_its_first_mark_the_change_made_while_it_was_down_arrives_once(
    k8s_api: K8sApiServer, events_url: str, tmp_path: Path
) -> None:
    pods = seed(k8s_api)
    names = [p["metadata"]["name"] for p in pods]
    slice_name = o.endpointslice("checkout", pods)["metadata"]["name"]
    data = tmp_path / "a"
    # A mark interval of an hour: the kill comes before the first mark, as a kill within a second
    # of the first start, or of an object's first sight, would.
    async with collector_killed_at_exit(k8s_api, events_url, data, "3600"):
        # every object's `created` stored: a node, a deployment, its replicaset, 3 pods, a service, a slice
        await wait_for(events_url, lambda ev: len({(e.type, e.k8s.name) for _, e in ev}) == 8)
    state = data / "k8s-collector" / "watch-state"
    saved = [p.name for p in state.glob("*") if not p.name.startswith("pending.")]
    assert saved == []  # the watch state was never saved
    before = await stream_events(events_url)
    assert {e.action for _, e in before} == {"created"}  # a first install: created only
    # While it is down: the Service loses its endpoints, a pod is OOMKilled, another deleted.
    k8s_api.store.apply(o.endpointslice("checkout", pods, ready=False))
    k8s_api.store.apply(o.terminated(pods[1], reason="OOMKilled", exit_code=137))
    k8s_api.store.delete("pods", "shop", names[2])
    async with collector(k8s_api, events_url, o.NODE, data, mark_interval=0.2, **{"lease_duration": 4.0}):
        await wait_for(events_url, lambda ev: ("unhealthy", "checkout") in actions(ev, "services")
                       and ("oom_killed", names[1]) in actions(ev, "pods")
                       and ("deleted", names[2]) in actions(ev, "pods"))  # fmt: skip
        await anyio.sleep(1.5)  # anything else it would emit
    events = await stream_events(events_url)
    first = {e.id for _, e in before}
    after = [e for _, e in events[len(before) :]]
    # What it emitted again is what it had emitted (same ids: the consumers' dedup drops them) ...
    assert {e.action for e in after if e.id in first} <= {"created"}
    # ... and what changed while it was down arrives, each once.
    new = Counter((e.type, e.action, e.k8s.name) for e in after if e.id not in first)
    assert new == Counter([
        ("endpoints", "updated", slice_name), ("services", "unhealthy", "checkout"),
        ("pods", "oom_killed", names[1]), ("pods", "restarted", names[1]), ("pods", "deleted", names[2]),
    ])  # fmt: skip
    assert len({e.id for e in after if e.id not in first}) == sum(new.values())
