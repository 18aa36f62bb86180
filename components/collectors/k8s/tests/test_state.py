"""The watch state file: saved and loaded back exactly; a torn or foreign file means relist."""

from __future__ import annotations

from pathlib import Path

from tapio_collector_k8s.adapters.state import StateStore
from tapio_collector_k8s.domain import digest as dg
from tapio_testing.k8s_api import objects as o


def test_round_trip_and_torn_file(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    assert store.load("pods") is None
    known = {d.uid: d for d in (dg.pod(o.pod("checkout", i)) for i in range(50))}
    known[next(iter(known))] = dg.pod(o.crash_loop(o.pod("checkout", 0)))
    store.save("pods", "4711", known)
    assert store.load("pods") == ("4711", known)
    path = tmp_path / "state" / "pods.state"
    path.write_bytes(path.read_bytes()[:-100])  # a crash mid-write cannot leave this (rename), a disk can
    assert store.load("pods") is None
    store.save("nodes", "1", {})
    (tmp_path / "state" / "nodes.state").rename(path)  # another resource's file
    assert store.load("pods") is None


def test_journal_marks_apply_on_top_of_the_snapshot_in_order(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    pods = [dg.pod(o.pod("checkout", i)) for i in range(3)]
    assert store.load_all(["pods", "nodes"]) == {}
    gen = store.generation
    store.save("pods", "10", {d.uid: d for d in pods}, gen)
    crashed = dg.pod(o.crash_loop(o.pod("checkout", 0)))
    store.append(
        [
            ("pods", "11", [(crashed.uid, crashed)]),
            ("nodes", "12", [(dg.node(o.node()).uid, dg.node(o.node()))]),
        ]
    )
    store.append([("pods", "13", [(pods[1].uid, None)])])
    loaded = StateStore(tmp_path / "state").load_all(["pods", "nodes", "services"])
    assert loaded["pods"] == ("13", {pods[0].uid: crashed, pods[2].uid: pods[2]})
    assert loaded["nodes"] == ("12", {dg.node(o.node()).uid: dg.node(o.node())})  # marks without a snapshot
    assert "services" not in loaded


def test_a_torn_mark_is_ignored_and_new_marks_go_to_a_new_generation(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    store.load_all(["pods"])
    p = dg.pod(o.pod("checkout", 0))
    store.append([("pods", "5", [(p.uid, p)])])
    store.append([("pods", "6", [(p.uid, None)])])
    journal = next((tmp_path / "state").glob("journal.*"))
    journal.write_bytes(journal.read_bytes()[:-7])  # a crash while writing the last mark
    again = StateStore(tmp_path / "state")
    assert again.load_all(["pods"]) == {"pods": ("5", {p.uid: p})}
    assert again.generation > store.generation  # never appended after the torn tail
    again.append([("pods", "7", [])])
    assert StateStore(tmp_path / "state").load("pods") == ("7", {p.uid: p})


def test_a_snapshot_of_everything_replaces_the_older_journals(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    store.load_all(["pods"])
    a, b = dg.pod(o.pod("checkout", 0)), dg.pod(o.pod("checkout", 1))
    store.append([("pods", "5", [(a.uid, a)])])
    gen = store.rotate()
    store.append([("pods", "7", [(b.uid, b)])])  # after the snapshot was taken
    store.save("pods", "6", {a.uid: a}, gen)
    assert StateStore(tmp_path / "state").load("pods") == ("7", {a.uid: a, b.uid: b})
    store.drop_journals_before(gen)
    assert [p.name for p in (tmp_path / "state").glob("journal.*")] == [f"journal.{gen}"]
    assert StateStore(tmp_path / "state").load("pods") == ("7", {a.uid: a, b.uid: b})


def test_notes_of_objects_never_marked_are_pending_after_a_crash(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    store.load_all(["pods", "nodes"])
    a, b, c = (dg.pod(o.pod("checkout", i)) for i in range(3))
    store.note("pods", [(a.uid, a), (b.uid, b), (c.uid, c)])  # emitted as created, then...
    store.append([("pods", "7", [(a.uid, a), (c.uid, None)])])  # a confirmed and saved, c deleted
    again = StateStore(tmp_path / "state")
    assert again.load_all(["pods", "nodes"]) == {"pods": ("7", {a.uid: a})}
    assert again.pending == {"pods": {b.uid: b}}  # emitted, never saved: derived from b when seen
    assert again.generation > store.generation
    path = tmp_path / "state" / f"pending.{again.generation}"
    again.note("nodes", [(dg.node(o.node()).uid, dg.node(o.node()))])
    path.write_bytes(path.read_bytes()[:-5])  # a torn note: the ones before it count
    third = StateStore(tmp_path / "state")
    third.load_all(["pods", "nodes"])
    assert third.pending == {"pods": {b.uid: b}}
    gen = third.rotate()
    third.note("pods", [(b.uid, b)], sync=True)  # carried on with a snapshot of everything
    third.save("pods", "8", {a.uid: a}, gen)
    third.drop_journals_before(gen)
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [f"pending.{gen}", "pods.state"]
    fourth = StateStore(tmp_path / "state")
    assert fourth.load_all(["pods"]) == {"pods": ("8", {a.uid: a})}
    assert fourth.pending == {"pods": {b.uid: b}}
