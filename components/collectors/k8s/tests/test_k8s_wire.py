"""The hand-encoded pod events (build.pod_wire through tapio_publisher.k8s_wire) are the events the
builder makes (build("pods", ...)): parsed by the protobuf library, equal as messages and in their
deterministic serialization (map entries sorted), over thousands of generated pods with every
field set and unset, empty strings, unicode, large label maps, many containers, owner chains,
pod IPs, odd times and negative numbers; the recorded pods' real transitions too."""

from __future__ import annotations

import random

from tapio.events.v1 import events_pb2
from tapio_collector_k8s.domain import digest as dg
from tapio_collector_k8s.domain.actions import Change, changes
from tapio_collector_k8s.domain.build import SEVERITY, build, pod_wire
from tapio_collector_k8s.domain.digest import Container, Pod, Ref
from tapio_collector_k8s.domain.owners import owner_chain
from tapio_testing.k8s_api import objects as o

NOW = 1_796_000_000_123_456_789
ACTIONS = ("created", "deleted", "restarted", "oom_killed", "crash_loop", "updated", "ready", "not_ready")
TIMES = ("", "2026-11-30T08:21:00Z", "2026-12-01T09:30:00.123456Z", "2026-11-30T08:21:00+01:00",
         "1969-07-20T20:17:40Z", "1970-01-01T00:00:00Z", "yesterday", "2026-12-01T09:30:00.000001-05:30")  # fmt: skip
WORDS = (
    "",
    "a",
    "checkout",
    "ünïcødé-名前",
    "emoji-🚀",
    "x" * 200,
    "y" * 20_000,
    "with space",
    "k=v,\x00nul",
)


def text(r: random.Random) -> str:
    if r.random() < 0.6:
        return r.choice(WORDS)
    return "".join(
        chr(r.choice((r.randrange(32, 127), r.randrange(0xA0, 0xD7FF)))) for _ in range(r.randrange(1, 40))
    )


def pairs(r: random.Random, most: int) -> tuple[tuple[str, str], ...]:
    n = r.choice((0, 1, 3, most))
    items = [(text(r), text(r)) for _ in range(n)]
    if items and r.random() < 0.2:
        items.append((items[0][0], text(r)))  # a repeated key: the last wins in both
    return tuple(items)


def number(r: random.Random) -> int:
    return r.choice((0, 1, 127, 128, 16383, 16384, 2**31 - 1, -1, -(2**31), r.randrange(-1000, 100_000)))


def container(r: random.Random, name: str) -> Container:
    cid = r.choice(("", "containerd://" + "ab" * 32, "docker://" + "cd" * 32, "no-scheme", "cri-o://"))
    return Container(name, cid, r.random() < 0.5, r.random() < 0.5, number(r), text(r), text(r), number(r),
                     r.choice(TIMES), text(r))  # fmt: skip


def pod(r: random.Random) -> Pod:
    names = list(dict.fromkeys(text(r) for _ in range(r.choice((0, 1, 2, 5, 30)))))
    return Pod(
        rv=r.choice(("", "1", "123456789")), uid=text(r), name=text(r), namespace=text(r), node=text(r),
        labels=pairs(r, 150), owner=None, phase=r.choice(("", "Running", "Pending", "Failed")), reason=text(r),
        ready=r.random() < 0.5, unschedulable=False, containers=tuple(container(r, n) for n in names),
        pod_ips=tuple(text(r) for _ in range(r.choice((0, 1, 2, 8)))), host_ip=text(r), created=r.choice(TIMES),
    )  # fmt: skip


def chain(r: random.Random) -> tuple[Ref, ...]:
    return tuple((text(r), text(r), text(r)) for _ in range(r.choice((0, 1, 2, 4))))


def change(r: random.Random, p: Pod) -> Change:
    names = [c.name for c in p.containers]
    return Change(
        action=r.choice(ACTIONS), severity=r.choice(tuple(SEVERITY)), message=text(r), reason=text(r),
        container=r.choice(["", "not-a-container", *names]), attributes=pairs(r, 20),
    )  # fmt: skip


def assert_same(data: bytes, expected: events_pb2.Event, exact: bool = False) -> None:
    got = events_pb2.Event.FromString(data)
    assert got == expected
    assert got.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
    assert data.startswith(events_pb2.Event(id=expected.id).SerializeToString())  # the id first
    if exact:  # no map with two entries (or a repeated key) to differ in: the very bytes
        assert data == expected.SerializeToString()


def test_generated_pods_encode_to_the_builders_events() -> None:
    r = random.Random(20261201)
    exacts = 0
    for _ in range(3000):
        p, owners, cluster = pod(r), chain(r), r.choice(("", "prod-eu-1", "名前"))
        c = change(r, p)
        now = r.choice((NOW, 0, 999_999_999, 1_000_000_000))
        expected = build("pods", p, c, now_ns=now, cluster=cluster, owners=owners)
        exact = not c.attributes and len(p.labels) < 2
        assert_same(pod_wire(p, c, now, cluster, owners), expected, exact)
        exacts += exact
    assert exacts > 200


def test_empty_pod_and_change() -> None:
    p = Pod("", "", "", "", "", (), None, "", "", False, False, (), (), "", "")
    for c in (Change("", "info", ""), Change("created", "debug", "", attributes=(("", ""),))):
        assert_same(pod_wire(p, c, 0), build("pods", p, c, now_ns=0), exact=True)


def test_recorded_pods_real_transitions() -> None:
    rs = o.replicaset("checkout")
    base = o.pod("checkout", 3, rs=rs)
    after = [o.terminated(base, reason="OOMKilled", exit_code=137), o.terminated(base, reason="Error", exit_code=1),
             o.node_lost(base)]  # fmt: skip
    d0 = dg.pod(base)
    owners = owner_chain(d0.owner, d0.namespace, d0.labels, lambda *_: None)
    seen = 0
    for obj in after:
        d1 = dg.pod(obj)
        for old, new in ((None, d0), (d0, d1), (d1, None)):
            d = new if new is not None else old
            assert d is not None
            for c in changes("pods", old, new):
                assert_same(pod_wire(d, c, NOW, "prod-eu-1", owners),
                            build("pods", d, c, now_ns=NOW, cluster="prod-eu-1", owners=owners))  # fmt: skip
                seen += 1
    assert seen >= 6
