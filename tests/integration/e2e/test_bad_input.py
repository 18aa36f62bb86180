"""Scenario "bad input on the wire": garbage, truncated protobuf, a batch under a wrong
`Tapio-Encoding`, an oversized message (a zstd bomb, and one beyond the stream's size limit),
published to `tapio.events.*` and `tapio.correlations.*` while good traffic flows, on the production
3-node cluster (TLS, the users of auth.conf): the components each as its own process and user, the
bad events published by a collector's user (tapio-collectors may publish `tapio.events.>`), the bad
correlations by the correlator's (the one user that may publish `tapio.correlations.>`). Every bad
message ends in `tapio.dlq.*` once per consumer that reads it, with its reason (`Tapio-Error`); the
one beyond the size limit is refused to its publisher (the server's max_payload, 1 MiB in
production); every good one is delivered."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest
import zstandard
from google.protobuf.message import DecodeError, Message
from nats.aio.client import Client
from nats.errors import Error as NatsError

from tapio.correlations.v1 import correlations_pb2
from tapio.events.v1 import events_pb2
from tapio_common.model.fast import correlation_to_pb
from tapio_common.nats.connect import connect
from tapio_jetstream.dlq import ERROR_HEADER, STREAM_HEADER, STREAM_SEQ_HEADER
from tapio_jetstream.layout import ALERTS, CORRELATIONS, DLQ, EVENTS, PROCESSED
from tapio_publisher.codec import COMPRESSION_HEADER, ENCODING_HEADER
from tapio_publisher.subjects import correlation_subject
from tapio_testing.natscluster import NatsCluster
from tapio_testing.receivers.hec import HecReceiver
from tapio_testing.wait import eventually
from tests.integration.e2e.clusterflow import (
    COLLECTOR,
    STREAMS,
    admin_client,
    collector_publisher,
    describe,
    settled,
)
from tests.integration.e2e.flows import (
    cascade_lines,
    hec_arrivals,
    msg_ids,
    processed_events,
    routed,
    to_events,
)
from tests.integration.e2e.product import HEC_TOKEN, components, drained, hec_sink, stream_messages
from tests.integration.e2e.report import Entry, Report
from tests.integration.exporter_helpers import correlation

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

EVENT_READERS = ("correlator", "pipeline")  # each dead-letters a bad event message on its own
CORRELATION_READERS = ("siem-exporter",)
BOMB = zstandard.ZstdCompressor().compress(b"\0" * (65 * 1024 * 1024))  # 65 MiB: beyond the 64 MiB limit


def truncated(message: Message) -> bytes:
    """The message's bytes cut at the last point where they no longer parse (inside a field)."""
    whole = message.SerializeToString()
    for cut in range(len(whole) - 1, 0, -1):
        try:
            type(message).FromString(whole[:cut])
        except DecodeError:
            return whole[:cut]
    raise AssertionError(f"no truncation of a {type(message).__name__} fails to parse")


def bad_events(good: events_pb2.Event) -> dict[str, tuple[bytes, dict[str, str]]]:
    batch = events_pb2.EventBatch(events=[good]).SerializeToString()
    return {
        "garbage": (b"\xff\xfe not a protobuf \x00\x01\x02" * 8, {}),
        "truncated": (truncated(good), {}),
        "wrong-encoding": (batch, {ENCODING_HEADER: "avro"}),
        "bomb": (BOMB, {COMPRESSION_HEADER: "zstd", ENCODING_HEADER: "batch"}),
    }


def bad_correlations() -> dict[str, tuple[bytes, dict[str, str]]]:
    return {
        "garbage": (b"\x0a\xff\xff\xff\xff\x0f garbage", {}),
        "truncated": (truncated(correlation_to_pb(correlation(7, 2, time.time_ns()))), {}),
        "no-id": (correlations_pb2.Correlation(type="cascading_failure").SerializeToString(), {}),
        "bomb": (BOMB, {COMPRESSION_HEADER: "zstd"}),
    }


async def publish_raw(nc: Client, subject: str, data: bytes, headers: dict[str, str]) -> int:
    ack = await nc.jetstream().publish(subject, data, headers=headers or None)
    return int(ack.seq)


async def test_bad_input_goes_to_the_dlq_while_good_traffic_flows(
    e2e_cluster: NatsCluster, tmp_path: Path, e2e_report: Report
) -> None:
    cluster = e2e_cluster
    copies = [to_events(cascade_lines(80 + k)) for k in range(3)]  # fresh ids: the cluster is shared
    good_events = [e for c in copies for e in c]
    good_corr = correlation(1, 1, time.time_ns())
    # the bad events' publisher: a collector's user; the bad correlations': the correlator's
    events_nc = await connect(cluster.identity(COLLECTOR).nats_config(cluster.urls), "e2e-bad-events")
    corr_nc = await connect(cluster.identity("tapio-correlator").nats_config(cluster.urls), "e2e-bad-corr")
    try:
        async with admin_client(cluster) as nc:
            for stream in STREAMS:
                await nc.jetstream().purge_stream(stream)
            await eventually(lambda: settled(nc), "every stream with its leader and current replicas", 60)
            with (
                HecReceiver(token=HEC_TOKEN, ack=True) as hec,
                components(
                    ",".join(cluster.urls), tmp_path, exporter_sinks=[hec_sink(hec.url)], cluster=cluster
                ) as running,
            ):
                bad: dict[tuple[str, int], str] = {}  # (stream, seq) -> what it was
                refused: list[str] = []
                async with collector_publisher(cluster, tmp_path) as pub:
                    await pub.publish_many(copies[0])
                    for name, (data, headers) in bad_events(copies[0][0]).items():
                        seq = await publish_raw(events_nc, "tapio.events.k8s.e2e.pods.created", data, headers)
                        bad[(EVENTS, seq)] = f"event {name}"
                    await pub.publish_many(copies[1])
                    with pytest.raises(NatsError) as over:  # beyond max_payload: refused to its publisher
                        await publish_raw(
                            events_nc, "tapio.events.k8s.e2e.pods.created", b"\0" * (2 * 1024 * 1024), {}
                        )
                    refused.append(f"event over the size limit: {type(over.value).__name__}")
                    subject = correlation_subject(good_corr.confidence, good_corr.type)
                    for name, (data, headers) in bad_correlations().items():
                        seq = await publish_raw(corr_nc, subject, data, headers)
                        bad[(CORRELATIONS, seq)] = f"correlation {name}"
                    msg_id = f"{good_corr.id}:{good_corr.revision}"
                    await corr_nc.jetstream().publish(
                        subject,
                        correlation_to_pb(good_corr).SerializeToString(),
                        headers={"Nats-Msg-Id": msg_id},
                    )
                    await pub.publish_many(copies[2])
                    with anyio.fail_after(60):
                        await pub.flush()
                expected_dlq = {
                    (reader, stream, seq)
                    for (stream, seq) in bad
                    for reader in (EVENT_READERS if stream == EVENTS else CORRELATION_READERS)
                }

                async def dlq_full() -> bool:
                    return (await nc.jetstream().stream_info(DLQ)).state.messages >= len(expected_dlq)

                await eventually(dlq_full, f"{len(expected_dlq)} dead letters", within=90)

                def incidents_fired() -> bool:
                    firing = [a for a in hec.alerts() if a["state"] == "firing"]
                    return len(firing) >= len(copies) + 1

                await eventually(incidents_fired, "every incident FIRING at HEC", within=90)
                backlog = await drained(nc)
                stored = msg_ids(await stream_messages(nc, ALERTS))
                await eventually(
                    lambda: set(hec_arrivals(hec)) >= set(stored), "every stored alert at HEC", 30
                )
                processed = processed_events(await stream_messages(nc, PROCESSED))
                dlq = await stream_messages(nc, DLQ)
                alive = {name: c.alive() for name, c in running.items()}
            at_hec = hec_arrivals(hec)
    finally:
        await events_nc.close()
        await corr_nc.close()
    dead = [
        (m.subject.rsplit(".", 1)[-1], (m.headers or {}).get(STREAM_HEADER, ""),
         int((m.headers or {}).get(STREAM_SEQ_HEADER, "0")), (m.headers or {}).get(ERROR_HEADER, ""))
        for m in dlq
    ]  # fmt: skip
    got = {(c, s, q) for c, s, q, _ in dead}
    reasons = {f"{c} {bad.get((s, q), '?')}": err for c, s, q, err in dead}
    routed_ids = {i for _, i in processed}
    want_ids = routed(good_events)
    entry = e2e_report.add(
        Entry(
            scenario="bad input on the wire",
            published=len(good_events) + 1,
            delivered=len(want_ids & routed_ids) + len(set(at_hec)),
            lost=len(want_ids - routed_ids) + len(set(stored) - set(at_hec)) + len(expected_dlq - got),
            duplicates=sum(n - 1 for n in at_hec.values())
            + sum(n - 1 for n in processed.values())
            + len(dead)
            - len(got),
            dlq=len(dead),
            expected_dlq=len(expected_dlq),
            detail={
                "bad": len(bad),
                "refused": refused,
                "cluster": describe(cluster),
                "reasons": reasons,
                "alerts_at_hec": len(at_hec),
                "backlogs": {k: list(v) for k, v in backlog.items()},
            },
        )
    )
    assert not entry.problems(), entry
    assert got == expected_dlq, (got, expected_dlq)
    assert all(err for *_, err in dead), reasons  # every dead letter says why
    assert all(alive.values()), alive  # bad input never stops a component
    assert all(v == (0, 0) for v in backlog.values()), backlog
    firing = {a["correlation_id"] for a in hec.alerts() if a["state"] == "firing"}
    assert good_corr.id in firing
