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
