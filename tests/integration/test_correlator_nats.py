"""The correlator on a real JetStream: correlations on the right subjects, and a kill -9 mid-scenario
changes nothing (no correlation lost, none published twice)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import anyio
import pytest
from nats.aio.client import Client

from tapio.correlations.v1 import correlations_pb2
from tapio.events.v1 import events_pb2
from tapio_publisher import Publisher, PublisherSettings
from tapio_testing.jetstream import JetStreamServer
from tests.integration.correlator_helpers import (
    all_found,
    final_revisions,
    offline,
    running_correlator,
    scenario_events,
    stored_correlations,
    wait_consumed,
)

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

LEVEL = {
    correlations_pb2.CONFIDENCE_HIGH: "high",
    correlations_pb2.CONFIDENCE_MEDIUM: "medium",
    correlations_pb2.CONFIDENCE_LOW: "low",
}


async def publish(nc: Client, events: list[events_pb2.Event], spool: Path) -> int:
    """Publishes the events (batched per subject, as collectors do); returns the stream's last sequence."""
    settings = PublisherSettings.from_section({"batch_linger": 0.05}, str(spool))
    async with Publisher(settings, nc=nc) as pub:
        await pub.publish_many(events)
        await pub.flush()
    return int((await nc.jetstream().stream_info("TAPIO_EVENTS")).state.last_seq)


def key(c: correlations_pb2.Correlation) -> tuple[str, str, str, tuple[str, ...]]:
    """What an incident is: type, root cause, confidence and members. Not its revision: `serve`
    publishes a revision whenever a pull changed an incident (its count depends on how the events
    were batched and when the wall clock advanced event time), `replay` only the final state.
    Revisions are checked on their own: in order, none lost, none published twice."""
    return (c.type, c.root_cause_event_id, LEVEL[c.confidence], tuple(c.event_ids))


def medium_high(corrs: dict[str, correlations_pb2.Correlation]) -> dict[str, correlations_pb2.Correlation]:
    return {i: c for i, c in corrs.items() if c.confidence != correlations_pb2.CONFIDENCE_LOW}


async def test_scenarios_give_their_correlations_on_the_right_subjects(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    events, expected = scenario_events()
    async with running_correlator(jetstream.url, tmp_path, snapshot_interval=30) as (correlator, nc):
        last = await publish(nc, events, tmp_path / "spool")
        await wait_consumed(nc, last, proc=correlator)
        await anyio.sleep(3)  # idle advance: the last buffered events are processed
        stored = await stored_correlations(nc)
    assert correlator.exit_code == 0, correlator.log.read_text()[-3000:]
    for subject, msg_id, c in stored:
        assert subject == f"tapio.correlations.{LEVEL[c.confidence]}.{c.type}"
        assert msg_id == f"{c.id}:{c.revision}"
    final = final_revisions(stored)
    found = {(c.type, c.root_cause_event_id): LEVEL[c.confidence] for c in final.values()}
    for exp in expected:
        assert found.get((str(exp["type"]), str(exp["rootCauseEventId"]))) == exp["confidence"], exp
    assert len(medium_high(final)) == len(expected), "no other medium/high correlation"
    assert {i: key(c) for i, c in medium_high(final).items()} == {
        i: key(c) for i, c in medium_high(offline(events)).items()
    }, "the same as the offline replay of the same events"


@pytest.mark.parametrize(
    ("snapshot_interval", "recovery"),
    [(3600.0, "replaying events seen before the restart"), (0.5, "engine state restored")],
    ids=["no-snapshot", "recent-snapshot"],
)
async def test_kill_9_mid_scenario_loses_and_duplicates_nothing(
    jetstream: JetStreamServer, tmp_path: Path, snapshot_interval: float, recovery: str
) -> None:
    events, expected = scenario_events()
    half = len(events) // 2
    async with running_correlator(jetstream.url, tmp_path, snapshot_interval) as (correlator, nc):
        last = await publish(nc, events[:half], tmp_path / "spool")
        await wait_consumed(nc, last, proc=correlator)
        await anyio.sleep(1.5)  # snapshots due (recent-snapshot), idle advance done
        before = len(await stored_correlations(nc))
        correlator.kill9()
        last = await publish(nc, events[half:], tmp_path / "spool")
        correlator.start()
        await wait_consumed(nc, last, proc=correlator)
        await anyio.sleep(3)
        stored = await stored_correlations(nc)
    assert before > 0, "the kill happened mid-incident: correlations were already published"
    assert recovery in correlator.log.read_text(), "the restart went through the recovery path under test"
    ids = Counter(msg_id for _, msg_id, _ in stored)
    assert [i for i, n in ids.items() if n > 1] == [], "no correlation revision published twice"
    by_id: dict[str, list[int]] = {}
    for _, _, c in stored:
        by_id.setdefault(c.id, []).append(c.revision)
    for revisions in by_id.values():
        assert revisions == list(range(1, len(revisions) + 1)), "revisions in order, none lost"
    final = final_revisions(stored)
    assert {i: key(c) for i, c in medium_high(final).items()} == {
        i: key(c) for i, c in medium_high(offline(events)).items()
    }, "the final set is the one without a crash"
    assert all_found(expected, stored)


async def test_an_undecodable_message_goes_to_the_dlq_and_the_engine_carries_on(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    events, expected = scenario_events()
    async with running_correlator(jetstream.url, tmp_path, snapshot_interval=30) as (correlator, nc):
        js = nc.jetstream()
        bad = await js.publish(
            "tapio.events.k8s.default.pods.created",
            b"\xff\xfenot protobuf",
            headers={"Tapio-Encoding": "batch", "Nats-Msg-Id": "garbage-1"},
        )
        last = await publish(nc, events, tmp_path / "spool")
        await wait_consumed(nc, last, proc=correlator)
        await anyio.sleep(3)
        dlq = await js.get_last_msg("TAPIO_DLQ", "tapio.dlq.correlator")
        stored = await stored_correlations(nc)
    assert correlator.exit_code == 0, correlator.log.read_text()[-3000:]
    headers = dlq.headers or {}
    assert headers["Tapio-Stream-Seq"] == str(bad.seq)
    assert headers["Tapio-Error"].startswith("cannot decode")
    assert dlq.data == b"\xff\xfenot protobuf"
    assert all_found(expected, stored), "the rest was correlated"
