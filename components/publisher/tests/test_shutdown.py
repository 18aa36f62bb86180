"""SIGTERM: a producer process flushes what it holds, or spools it when NATS is down; nothing is lost."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import nats

from tapio_jetstream import decode_events
from tapio_jetstream.layout import production_layout
from tapio_jetstream.streams import apply_layout
from tapio_publisher.spool import Spool
from tapio_testing.jetstream import JetStreamServer

CHILD = Path(__file__).with_name("sigterm_child.py")


async def stream_ids(url: str) -> list[str]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("TAPIO_EVENTS")
        ids = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg("TAPIO_EVENTS", seq)
            ids += [e.id for e in decode_events(msg.headers, msg.data or b"")]
        return ids
    finally:
        await nc.close()


async def create_streams(url: str) -> None:
    nc = await nats.connect(url)
    await apply_layout(nc.jetstream(), 1, layout=production_layout(1, scale=0.01))
    await nc.close()


def spool_ids(spool_dir: Path) -> list[str]:
    spool = Spool(spool_dir)
    spool.open()
    ids = []
    while batch := spool.read(100):
        for _, rec in batch:
            ids += [e.id for e in decode_events(rec.headers, rec.payload)]
    spool.close()
    return ids


def run_child(url: str, tmp_path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), url, str(tmp_path / "spool"), str(tmp_path / "handed")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def stop_child(proc: subprocess.Popen[str], tmp_path: Path) -> int:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    return int((tmp_path / "handed").read_text())


def test_sigterm_flushes_everything_in_memory(jetstream: JetStreamServer, tmp_path: Path) -> None:
    anyio.run(create_streams, jetstream.url)
    proc = run_child(jetstream.url, tmp_path)
    time.sleep(1.5)
    handed = stop_child(proc, tmp_path)
    assert handed > 1000
    ids = anyio.run(stream_ids, jetstream.url)
    assert sorted(ids) == [f"c-{i:06d}" for i in range(handed)], "all flushed, once each"
    assert spool_ids(tmp_path / "spool") == []


def test_sigterm_while_nats_is_down_spools_everything(jetstream: JetStreamServer, tmp_path: Path) -> None:
    anyio.run(create_streams, jetstream.url)
    proc = run_child(jetstream.url, tmp_path)
    time.sleep(1.0)
    jetstream.kill()
    time.sleep(1.0)
    handed = stop_child(proc, tmp_path)
    spooled = spool_ids(tmp_path / "spool")
    assert spooled, "what was in memory went to the spool"
    jetstream.restart()
    stored = anyio.run(stream_ids, jetstream.url)
    assert sorted(set(stored) | set(spooled)) == [f"c-{i:06d}" for i in range(handed)], "nothing lost"
    assert len(set(stored)) == len(stored), "no duplicate in the stream"
