"""The spool: framing with CRC, segments, in-order replay, commit cursor, eviction and torn records."""

from __future__ import annotations

from pathlib import Path

import pytest

from tapio_publisher.spool import FsyncPolicy, Position, Spool
from tapio_publisher.spool_format import HEADER, SpoolRecord, decode_record, encode_record, scan


def rec(i: int, size: int = 1000, events: int = 10) -> SpoolRecord:
    return SpoolRecord(
        subject=f"tapio.events.k8s.ns{i}.pods.created",
        msg_id=f"batch-{i}",
        headers={"Tapio-Encoding": "batch", "Tapio-Compression": "zstd"},
        payload=bytes([i % 256]) * size,
        events=events,
    )


class Drops:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __call__(self, reason: str, n: int) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + n


def open_spool(path: Path, drops: Drops | None = None, **kw: object) -> Spool:
    opts: dict[str, object] = {"max_bytes": 1 << 20, "segment_bytes": 8192, "fsync": FsyncPolicy.NEVER}
    opts.update(kw)
    spool = Spool(path, on_drop=drops, **opts)  # type: ignore[arg-type]
    spool.open()
    return spool


def test_record_framing_round_trip() -> None:
    r = SpoolRecord(
        "tapio.alerts.critical.ünï", "id-1", {"Nats-Msg-Id": "id-1", "A": "b:c"}, b"\x00\xffdata", 3
    )
    frame = encode_record(r)
    assert decode_record(frame) == r
    ends, good, lost = scan(frame + frame)
    assert ends == [(len(frame), 3), (2 * len(frame), 3)]
    assert (good, lost) == (2 * len(frame), 0)


def test_append_read_commit_in_order_across_segments(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append([rec(i) for i in range(20)])  # ~21 KB: three segments of 8 KiB
    assert len(list(tmp_path.glob("*.seg"))) >= 3
    assert (spool.pending_records, spool.pending_events) == (20, 200)
    got = spool.read(7) + spool.read(100)
    assert [r.msg_id for _, r in got] == [f"batch-{i}" for i in range(20)]
    assert spool.read(10) == []
    spool.commit(got[9][0])
    assert (spool.pending_records, spool.pending_events) == (10, 100)
    spool.commit(got[-1][0])
    assert spool.empty
    assert len(list(tmp_path.glob("*.seg"))) == 1, "finished segments are deleted, the write segment stays"


def test_rewind_reads_uncommitted_records_again(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append([rec(i) for i in range(5)])
    first = spool.read(2)
    spool.commit(first[0][0])
    spool.read(10)
    spool.rewind()
    assert [r.msg_id for _, r in spool.read(10)] == ["batch-1", "batch-2", "batch-3", "batch-4"]


def test_reopen_replays_only_what_was_not_committed(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append([rec(i) for i in range(12)])
    items = spool.read(5)
    spool.commit(items[-1][0])
    spool.close()
    again = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=8192)
    recovery = again.open()
    assert (recovery.records, recovery.events, recovery.torn_records) == (7, 70, 0)
    assert [r.msg_id for _, r in again.read(100)] == [f"batch-{i}" for i in range(5, 12)]
    again.append([rec(99)])
    assert again.read(10)[0][1].msg_id == "batch-99"


def test_torn_last_record_is_skipped_counted_and_truncated(tmp_path: Path) -> None:
    spool = open_spool(tmp_path, segment_bytes=1 << 18)
    spool.append([rec(i, events=7) for i in range(3)])
    spool.close()
    (seg,) = tmp_path.glob("*.seg")
    full = seg.stat().st_size
    with open(seg, "r+b") as f:  # a crash in the middle of writing the third record
        f.truncate(full - 100)
    drops = Drops()
    again = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1 << 18, on_drop=drops)
    recovery = again.open()
    assert (recovery.records, recovery.torn_records) == (2, 7)
    assert drops.counts == {"spool_torn": 7}
    assert seg.stat().st_size == 2 * len(encode_record(rec(0)))
    assert [r.msg_id for _, r in again.read(10)] == ["batch-0", "batch-1"]
    again.append([rec(5)])  # appends after the good prefix, not after the torn bytes
    assert [r.msg_id for _, r in again.read(10)] == ["batch-5"]


def test_torn_header_and_corrupt_record(tmp_path: Path) -> None:
    frame = encode_record(rec(1, events=4))
    assert scan(frame + frame[: HEADER.size - 2]) == ([(len(frame), 4)], len(frame), 1)
    flipped = bytearray(frame + frame)
    flipped[len(frame) + HEADER.size + 5] ^= 0xFF
    assert scan(bytes(flipped)) == ([(len(frame), 4)], len(frame), 4)


def test_size_cap_evicts_oldest_first_and_counts_the_events(tmp_path: Path) -> None:
    drops = Drops()
    spool = open_spool(tmp_path, drops, max_bytes=32768, segment_bytes=8192)
    spool.append([rec(i, events=10) for i in range(60)])  # ~62 KB into a 32 KiB spool
    assert spool.total_bytes <= 32768
    lost = drops.counts["spool_full"]
    assert lost > 0
    assert lost % 10 == 0
    assert spool.pending_events + lost == 600
    remaining = [r for _, r in spool.read(100)]
    assert remaining[-1].msg_id == "batch-59", "the newest survive"
    assert remaining[0].msg_id == f"batch-{lost // 10}", "exactly the oldest were evicted"


def test_fsync_always_and_interval_write_the_same_records(tmp_path: Path) -> None:
    for policy in FsyncPolicy:
        d = tmp_path / policy.value
        spool = open_spool(d, fsync=policy, fsync_interval=0.0)
        spool.append([rec(i) for i in range(10)])
        spool.sync()
        spool.close()
        again = Spool(d, max_bytes=1 << 20, segment_bytes=8192)
        assert again.open().records == 10
    assert FsyncPolicy.parse("Always") is FsyncPolicy.ALWAYS
    with pytest.raises(ValueError, match=r"always\|interval\|never"):
        FsyncPolicy.parse("sometimes")


def test_positions_order() -> None:
    assert Position(1, 500) < Position(2, 0) < Position(2, 10)
