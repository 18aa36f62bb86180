"""Feeds the pod index from every pod event in TAPIO_EVENTS, so each pipeline replica knows all pods.

The durable consumer `pipeline` is shared by the replicas (each gets a share of the messages), so
the index cannot learn from it alone. This follower reads the pod subjects
(`tapio.events.k8s.*.pods.*`) with an ordered, ephemeral consumer (server-named, no ack, flow
control), starting `history` seconds back (0 = the whole stream): a restarted pipeline rebuilds
its index from the stream. `caught_up` is set once it has read what the stream held at start, so
the processor starts with the index warm.
"""

from __future__ import annotations

import time
from collections.abc import Container, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext, api

from tapio_common.logging import get_logger
from tapio_common.metrics import ComponentMetrics
from tapio_common.subjects import Subjects
from tapio_jetstream import DecodeError
from tapio_jetstream.startup import until_answered
from tapio_pipeline.enrich import POD_TYPE, SOURCE_K8S, PodIndex
from tapio_pipeline.views import decode_view

log = get_logger(__name__)


def pod_subject(subjects: Subjects) -> str:
    """`<prefix>.events.k8s.*.pods.*`: every pod event of the installation."""
    return f"{subjects.events}.k8s.*.pods.*"


QUIET = 1.0  # seconds without a message that mean "read everything the stream had"


async def follow_pods(
    js: JetStreamContext,
    index: PodIndex,
    metrics: ComponentMetrics,
    *,
    history: float,
    caught_up: anyio.Event,
    subjects: Subjects,
    skip: Container[int] = frozenset(),
    nc: Client | None = None,
) -> None:
    """Runs until cancelled; the index learns every pod event as it is stored, but for the
    messages in `skip` (stream sequences this replica's processor has routed, and so learnt from).
    Its subscription waits out a cluster that cannot answer yet (refusals on `nc` fail at once)."""
    config = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.ALL)
    if history > 0:
        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_TIME,
            opt_start_time=datetime.fromtimestamp(time.time() - history, tz=UTC),
        )
    sub = await until_answered(
        nc,
        f"the pod feed on {subjects.events_stream}",
        lambda: js.subscribe(
            pod_subject(subjects), stream=subjects.events_stream, ordered_consumer=True, config=config
        ),
    )
    learnt = 0
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=QUIET)
            except nats.errors.TimeoutError:
                if not caught_up.is_set():
                    log.info("pod index warm", pods=len(index), pod_events=learnt)
                    caught_up.set()
                continue
            views: Sequence[Any] = ()
            if msg.metadata.sequence.stream not in skip:
                try:
                    views = decode_view(msg.headers, msg.data)
                    for view in views:
                        if view.source == SOURCE_K8S and view.type == POD_TYPE:
                            index.learn_view(view)
                except DecodeError as e:
                    metrics.error("pod_feed_decode")  # the durable consumer dead-letters it; skipped here
                    log.warning("pod event not decodable, skipped by the pod index", error=str(e))
                    continue
            learnt += len(views)
            if not caught_up.is_set() and msg.metadata.num_pending == 0:
                log.info("pod index warm", pods=len(index), pod_events=learnt)
                caught_up.set()
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(2):
            await sub.unsubscribe()
