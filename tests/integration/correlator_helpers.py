"""Helpers of the correlator suites: scenario events in sequence, a correlator process, the stream's output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from tapio.correlations.v1 import correlations_pb2
from tapio.events.v1 import events_pb2
from tapio_common.config import NatsConfig
from tapio_common.model.fast import correlation_to_pb
from tapio_common.nats.connect import connect
from tapio_common.scenarios import load_scenarios
from tapio_correlator.demo import shift
from tapio_correlator.engine import EngineConfig
from tapio_correlator.replay import ReplayStats, replay

NS = 1_000_000_000
SLACK_S = 0.5


def scenario_events() -> tuple[list[events_pb2.Event], list[dict[str, object]]]:
    """Every public scenario, one after the other (30 minutes of event time apart), and what each expects."""
    events: list[events_pb2.Event] = []
    expected: list[dict[str, object]] = []
    t = 0
    for sc in load_scenarios():
        last = shift(sc.events, t or sc.events[0].time.seconds * NS)
        t = last + 30 * 60 * NS
        events += sc.events
        expected += sc.expected
    return events, expected


def offline(events: list[events_pb2.Event]) -> dict[str, correlations_pb2.Correlation]:
    """What `replay` finds in the same events with the runner's reorder slack: final revisions by id."""
    config = EngineConfig(reorder_slack_ns=int(SLACK_S * NS))
    copies = [events_pb2.Event.FromString(e.SerializeToString()) for e in events]
    result = replay(iter(copies), config, ReplayStats(), None)
    return {c.id: correlation_to_pb(c) for c in result.correlations}


class CorrelatorProcess:
    """`python -m tapio_correlator serve` against a given NATS URL, as a real separate process."""

    def __init__(self, url: str, workdir: Path, snapshot_interval: float) -> None:
        self.url = url
        self.workdir = workdir
        self.config = workdir / "correlator.yaml"
        self.config.write_text(
            "correlator:\n"
            f"  snapshot_interval: {snapshot_interval}\n"
            "  idle_advance: 1.0\n"
            "  fetch_timeout: 0.2\n"
            "  engine:\n"
            f"    reorder_slack_seconds: {SLACK_S}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "correlator.log"
        self.exit_code: int | None = None

    def start(self) -> None:
        args = [sys.executable, "-m", "tapio_correlator", "serve", "--nats-url", self.url, "--provision",
                "--config", str(self.config), "--metrics-port", "0", "--data-dir", str(self.workdir / "data")]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(30)
        return int(self.proc.returncode)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


async def wait_consumed(nc: Client, count_msgs: int, proc: CorrelatorProcess, within: float = 60.0) -> None:
    """Until the correlator's durable consumer has acked the first `count_msgs` messages of the stream."""
    js = nc.jetstream()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not proc.alive():
            raise AssertionError(f"correlator exited: {proc.log.read_text()[-3000:]}")
        try:
            info = await js.consumer_info("TAPIO_EVENTS", "correlator")
        except NotFoundError:  # the correlator provisions it when it starts
            info = None
        if info is not None and info.ack_floor.stream_seq >= count_msgs and info.num_pending == 0:
            return
        await anyio.sleep(0.2)
    raise AssertionError(f"correlator did not consume {count_msgs} messages in {within}s")


async def stored_correlations(nc: Client) -> list[tuple[str, str, correlations_pb2.Correlation]]:
    """Every message of TAPIO_CORRELATIONS: (subject, Nats-Msg-Id, correlation), in stream order."""
    js = nc.jetstream()
    info = await js.stream_info("TAPIO_CORRELATIONS")
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        if info.state.messages == 0:
            break
        msg = await js.get_msg("TAPIO_CORRELATIONS", seq)
        corr = correlations_pb2.Correlation()
        corr.ParseFromString(msg.data or b"")
        out.append((msg.subject or "", str((msg.headers or {}).get("Nats-Msg-Id", "")), corr))
    return out


def final_revisions(
    stored: list[tuple[str, str, correlations_pb2.Correlation]],
) -> dict[str, correlations_pb2.Correlation]:
    latest: dict[str, correlations_pb2.Correlation] = {}
    for _, _, c in stored:
        if c.id not in latest or c.revision > latest[c.id].revision:
            latest[c.id] = c
    return latest


@asynccontextmanager
async def running_correlator(
    url: str, workdir: Path, snapshot_interval: float
) -> AsyncIterator[tuple[CorrelatorProcess, Client]]:
    """A correlator process consuming from `url` and a client of the same server; both closed after."""
    correlator = CorrelatorProcess(url, workdir, snapshot_interval)
    correlator.start()
    nc = await connect(NatsConfig(urls=(url,)), "test")
    try:
        await wait_consumed(nc, 0, proc=correlator)  # provisioned and consuming
        yield correlator, nc
    finally:
        correlator.exit_code = correlator.stop()
        await nc.close()


def all_found(
    expected: list[dict[str, object]], stored: list[tuple[str, str, correlations_pb2.Correlation]]
) -> bool:
    found = {(c.type, c.root_cause_event_id) for c in final_revisions(stored).values()}
    return all((exp["type"], exp["rootCauseEventId"]) in found for exp in expected)
