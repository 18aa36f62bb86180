"""Engine snapshots are data, never code: a crafted snapshot is refused and nothing in it runs."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import msgpack
import pytest

from tapio_correlator.engine import Engine
from tapio_correlator.engine import snapshot as fmt
from tapio_correlator.engine.snapshot import MAGIC, VERSION, SnapshotRefused, fingerprint
from tapio_correlator_testing.loadgen import Mix, to_pb


class Marker:
    """Unpickling this writes a file: the proof that a pickle would run code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.path}",))


def crafted(objects: list[object], classes: list[str], root: object = None, version: int = VERSION) -> bytes:
    body: bytes = msgpack.packb([version, fingerprint(), classes, objects, root if root is not None else [0]])
    return MAGIC + body


def test_a_pickle_is_refused_and_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = pickle.dumps(Marker(str(marker)))
    for data in (payload, b"TAPIO-CORRELATOR-SNAPSHOT\x01" + payload, MAGIC + payload):
        with pytest.raises(SnapshotRefused):
            Engine.restore(data)
    assert not marker.exists(), "nothing in a snapshot may run"


def test_a_snapshot_naming_anything_outside_the_engine_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    for name in (
        "posix.system",
        "builtins.eval",
        "os.system",
        "subprocess.Popen",
        "tapio_correlator.loadgen.Mix",
    ):
        data = crafted([[6, 0, ["path", f"touch {marker}"]]], [name])
        with pytest.raises(SnapshotRefused, match="outside the engine"):
            Engine.restore(data)
    assert not marker.exists()


def test_a_snapshot_that_sets_methods_or_dunders_is_refused() -> None:
    engine_cls = "tapio_correlator.engine.engine.Engine"
    for field in ("__class__", "__dict__", "process_pb", "snapshot"):
        with pytest.raises(SnapshotRefused, match="no data field"):
            Engine.restore(crafted([[6, 0, [field, 1]]], [engine_cls]))


def test_newer_foreign_and_corrupt_snapshots_are_refused() -> None:
    good = Engine().snapshot()
    head = msgpack.unpackb(good[len(MAGIC) :], raw=False, strict_map_key=False)
    with pytest.raises(SnapshotRefused, match="newer"):
        Engine.restore(MAGIC + msgpack.packb([VERSION + 1, *head[1:]]))
    with pytest.raises(SnapshotRefused, match="another engine version"):
        Engine.restore(MAGIC + msgpack.packb([head[0], "0" * 32, *head[2:]]))
    with pytest.raises(SnapshotRefused, match="corrupt"):
        Engine.restore(good[: len(good) // 2])
    with pytest.raises(SnapshotRefused, match="not a correlator engine snapshot"):
        Engine.restore(b"\x00" * 64)
    with pytest.raises(SnapshotRefused, match="does not hold a correlator engine"):
        Engine.restore(fmt.dumps({"a": 1}))


def test_a_busy_engine_round_trips_with_shared_objects_kept() -> None:
    mix = Mix(300, 7)
    engine = Engine()
    for setup in mix.setup():
        engine.process_pb(to_pb(setup))
    events = [to_pb(ev) for ev in mix.chunk(20_000)]
    for pb in events[:15_000]:
        engine.process_pb(pb)
    restored = Engine.restore(engine.snapshot())
    assert restored.state_size() == engine.state_size()
    assert restored.counters() == engine.counters()
    rest_a = [c for ev in events[15_000:] for c in engine.process_pb(ev)] + engine.finish()
    rest_b = [c for ev in events[15_000:] for c in restored.process_pb(ev)] + restored.finish()
    assert rest_a == rest_b


def test_the_fingerprint_follows_the_engine_classes() -> None:
    assert len(fingerprint()) == 32
    assert "tapio_correlator.engine.incident.Incident" in fmt._registry()[0]
