"""The decision for an object the last run emitted as `created` and never saved (pure): noted
before it is emitted; seen again, derived from the noted digest: `created` again under the same
id, then what changed meanwhile under ids of the listed resourceVersion; nothing else."""

from __future__ import annotations

import copy

from tapio_collector_k8s.domain import digest as dg
from tapio_collector_k8s.domain.actions import Change, changes
from tapio_collector_k8s.domain.build import build
from tapio_collector_k8s.domain.recovery import noted_pairs, to_note
from tapio_testing.k8s_api import objects as o

RS = o.replicaset("checkout")


def at(obj: o.Obj, rv: int) -> o.Obj:
    obj = copy.deepcopy(obj)
    obj["metadata"]["resourceVersion"] = str(rv)
    return obj


def derived(resource: str, noted: o.Obj, now: o.Obj | None) -> list[tuple[str, str]]:
    """(action, event id) of what a restart derives for `noted` seen again as `now`."""
    out: list[tuple[str, str]] = []
    d_now = dg.digest(resource, now) if now is not None else None
    for old, new in noted_pairs(dg.digest(resource, noted), d_now):
        d = new if new is not None else old
        assert d is not None
        out += [(c.action, build(resource, d, c, now_ns=0).id) for c in changes(resource, old, new)]
    return out


def ids_of(resource: str, old: o.Obj | None, new: o.Obj | None) -> list[tuple[str, str]]:
    """(action, event id) of what a collector that had seen `old` derives for `new`."""
    d_old = dg.digest(resource, old) if old is not None else None
    d_new = dg.digest(resource, new) if new is not None else None
    d = d_new if d_new is not None else d_old
    assert d is not None
    found: list[Change] = changes(resource, d_old, d_new)
    return [(c.action, build(resource, d, c, now_ns=0).id) for c in found]


def test_a_change_made_while_it_was_down_is_derived_with_the_ids_a_running_collector_gives() -> None:
    pod = at(o.pod("checkout", 0, rs=RS), 10)
    oom = at(o.terminated(pod, reason="OOMKilled", exit_code=137), 12)
    got = derived("pods", pod, oom)
    assert got == ids_of("pods", None, pod) + ids_of("pods", pod, oom)
    assert [a for a, _ in got] == ["created", "oom_killed", "restarted"]
    pods = [o.pod("checkout", i, rs=RS) for i in range(2)]
    ready = at(o.endpointslice("checkout", pods), 20)
    none = at(o.endpointslice("checkout", pods, ready=False), 21)
    assert [a for a, _ in derived("endpointslices", ready, none)] == ["created", "updated"]


def test_unchanged_gives_the_created_again_and_nothing_else() -> None:
    pod = at(o.pod("checkout", 0, rs=RS), 10)
    assert derived("pods", pod, pod) == ids_of("pods", None, pod)
    # a resourceVersion that moved with nothing the collector publishes: still only `created`
    assert derived("pods", pod, at(pod, 11)) == ids_of("pods", None, pod)


def test_deleted_meanwhile_gives_created_and_deleted_under_their_once_only_ids() -> None:
    pod = at(o.pod("checkout", 0, rs=RS), 10)
    got = derived("pods", pod, None)
    assert got == ids_of("pods", None, pod) + ids_of("pods", at(pod, 99), None)
    assert [a for a, _ in got] == ["created", "deleted"]


def test_what_is_emitted_as_created_is_noted_and_its_later_states_until_marked_never_core_events() -> None:
    a, b = dg.pod(at(o.pod("checkout", 0), 10)), dg.pod(at(o.pod("checkout", 1), 11))
    b2 = dg.pod(at(o.terminated(o.pod("checkout", 1)), 12))
    a2 = dg.pod(at(o.terminated(o.pod("checkout", 0)), 13))
    assert to_note("pods", [(None, a), (b, b2), (b2, None)], set()) == [(a.uid, a)]
    # a created since the last mark: its later state is noted too (a restart derives from it)
    assert to_note("pods", [(a, a2), (b, b2)], {a.uid}) == [(a.uid, a2)]
    ev = dg.digest("events", at(o.core_event("BackOff", o.pod("checkout", 0), "back-off"), 13))
    assert to_note("events", [(None, ev)], set()) == []
