"""The correlator's real NATS runner, as `tapio-correlation` on the production config: consume, snapshot, restart.

Runs tapio_correlator.service (Runner, StateStore, catch-up) with the identity of the correlator's
manifest against the local 3-node cluster, whose streams, durable consumers and KV bucket stream were
created from the manifests as the `nack` user; the collectors publish the public scenarios. Every
permission violation the server reports to the correlator's connections fails the test, including
those the runner would only log (listing the bucket's keys to purge old snapshots).
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import anyio
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from infra.tests import contract
from infra.tests.natsflow import expect_denied, violation
from tapio.correlations.v1 import correlations_pb2
from tapio.events.v1 import events_pb2
from tapio_common.metrics import ComponentMetrics
from tapio_common.scenarios import load_scenarios
from tapio_correlator.demo import shift
from tapio_correlator.service.runner import COMPONENT, Runner
from tapio_correlator.service.settings import RunnerSettings
from tapio_correlator.service.state_store import HEAD, StateStore, StateStoreError
from tapio_publisher import Publisher, PublisherSettings
from tapio_testing.natscluster import NatsCluster
from tapio_testing.natsidentity import Identity, Secrets
from tapio_testing.natsprovision import connected, nack_identity, retry, stream_config, stream_spec

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="make-secrets.sh needs openssl"),
]

BUCKET = contract.STATE_BUCKETS["tapio-correlation"]
KV_STREAM = contract.KV_STREAMS["tapio-correlation"]
NS = 1_000_000_000
LEVEL = {
    correlations_pb2.CONFIDENCE_HIGH: "high",
    correlations_pb2.CONFIDENCE_MEDIUM: "medium",
    correlations_pb2.CONFIDENCE_LOW: "low",
}
# The runner's own settings (the Deployment's defaults), made quick; no snapshot or idle advance of
# its own before the restart, so the test decides what the snapshot covers.
FIRST = RunnerSettings(fetch_timeout=0.2, idle_advance=3600.0, snapshot_interval=3600.0)
SECOND = RunnerSettings(fetch_timeout=0.2, idle_advance=1.0, snapshot_interval=3600.0)


def scenario_parts() -> tuple[list[list[events_pb2.Event]], list[dict[str, object]]]:
    """The public scenarios 30 minutes of event time apart, in three parts (1 | 2 | the rest), and
    the correlations they expect."""
    parts: list[list[events_pb2.Event]] = [[], [], []]
    expected: list[dict[str, object]] = []
    t = 0
    for i, sc in enumerate(load_scenarios()):
        t = shift(sc.events, t or sc.events[0].time.seconds * NS) + 30 * 60 * NS
        parts[0 if i == 0 else 1 if i <= 2 else 2].extend(sc.events)
        expected.extend(sc.expected)
    return parts, expected


async def reset_bucket(cluster: NatsCluster, nack: Identity, spec: bool = True) -> None:
    """As NACK: removes the bucket's stream, then (spec) creates it from the manifest."""
    async with connected(cluster, nack) as nc:
        jsm = nc.jsm()
        with suppress(nats.js.errors.NotFoundError):
            await jsm.delete_stream(KV_STREAM)
        if spec:
            await retry(lambda: jsm.add_stream(stream_config(stream_spec(KV_STREAM))))


async def publish_events(
    cluster: NatsCluster, collector: Identity, events: list[events_pb2.Event], spool: Path
) -> int:
    """Publishes as a collector does (tapio_publisher, batched per subject); returns the last sequence."""
    async with connected(cluster, collector) as nc:
        async with Publisher(
            PublisherSettings.from_section({"batch_linger": 0.05}, str(spool)), nc=nc
        ) as pub:
            await pub.publish_many(events)
            with anyio.fail_after(30):
                await pub.flush()
        return int((await nc.jetstream(timeout=2).stream_info("TAPIO_EVENTS")).state.last_seq)


@asynccontextmanager
async def correlator(
    cluster: NatsCluster, ident: Identity, settings: RunnerSettings, data: Path, errors: list[str]
) -> AsyncIterator[tuple[Runner, StateStore, JetStreamContext]]:
    """What `tapio-correlator serve` wires without --provision (service/app.py), as the manifest's user."""
    async with connected(cluster, ident, errors) as nc:
        js = nc.jetstream(timeout=2)
        metrics = ComponentMetrics(COMPONENT)
        pub_settings = PublisherSettings.from_section({}, str(data / COMPONENT), batch_max_events=1)
        async with Publisher(pub_settings, nc=nc, registry=metrics.registry) as publisher:
            store = await StateStore.open(js, BUCKET, settings.replicas)
            yield Runner(nc, publisher, store, settings, metrics), store, js


async def run_until(runner: Runner, done: Callable[[], Awaitable[bool]], within: float = 60.0) -> None:
    """Runs the runner's loop until `done`, then lets it finish the pull in hand and return."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(runner.run)
        with anyio.fail_after(within):
            while True:
                if await done():
                    break
                await anyio.sleep(0.1)
        runner.stopping = True
    runner.stopping = False


def consumed(js: JetStreamContext, last: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        info = await js.consumer_info("TAPIO_EVENTS", "correlator")
        return info.ack_floor.stream_seq >= last and not info.num_pending and not info.num_ack_pending

    return check


async def stored_correlations(nc: Client) -> list[tuple[int, str, str, correlations_pb2.Correlation]]:
    """Every message of TAPIO_CORRELATIONS: (sequence, subject, Nats-Msg-Id, correlation)."""
    js = nc.jetstream(timeout=2)
    state = (await js.stream_info("TAPIO_CORRELATIONS")).state
    out = []
    for seq in range(state.first_seq, state.last_seq + 1) if state.messages else ():
        msg = await js.get_msg("TAPIO_CORRELATIONS", seq)
        corr = correlations_pb2.Correlation.FromString(msg.data or b"")
        out.append((seq, msg.subject or "", str((msg.headers or {}).get("Nats-Msg-Id", "")), corr))
    return out


async def test_runner_consumes_snapshots_restarts_and_recovers_as_its_user(
    cluster: NatsCluster, identities: dict[str, Identity], secrets: Secrets, tmp_path: Path
) -> None:
    nack = nack_identity(secrets, tmp_path / "nack")
    await reset_bucket(cluster, nack)
    (part1, part2, part3), expected = scenario_parts()
    collector, ident = identities["tapio-k8s-collector"], identities["tapio-correlator"]
    errors: list[str] = []

    async with correlator(cluster, ident, FIRST, tmp_path / "first", errors) as (runner, store, js):
        await runner.recover()
        last = await publish_events(cluster, collector, part1, tmp_path / "spool")
        await run_until(runner, consumed(js, last))
        await runner.snapshot()
        snapshot = await store.load()
        assert snapshot is not None
        assert snapshot.events_seq == last
        last = await publish_events(cluster, collector, part2, tmp_path / "spool")
        await run_until(runner, consumed(js, last))
        delivered = runner.last_seq  # then the process dies: no snapshot of part 2
    async with connected(cluster, nack) as nc:
        after_snapshot = [s for s in await stored_correlations(nc) if s[0] > snapshot.correlations_seq]
    assert after_snapshot, "correlations were published after the snapshot (the restart must not repeat them)"

    async with (
        connected(cluster, nack) as observer,
        correlator(cluster, ident, SECOND, tmp_path / "second", errors) as (runner, store, js),
    ):
        assert (await js.stream_info(KV_STREAM)).config.allow_direct, "the manifest's bucket: direct gets"
        await runner.recover()
        # The snapshot came back from the bucket; the catch-up read back TAPIO_EVENTS after it and
        # the correlations published since (direct gets), which are not published again.
        assert store.generation == snapshot.generation
        assert runner.last_seq == delivered > snapshot.events_seq
        assert runner.published == 0, "nothing published again"
        assert not runner.suppress, "every revision read back was met again in the replay"
        last = await publish_events(cluster, collector, part3, tmp_path / "spool")

        async def all_found() -> bool:
            if not await consumed(js, last)():
                return False
            found = {(c.type, c.root_cause_event_id) for *_, c in await stored_correlations(observer)}
            return all((e["type"], e["rootCauseEventId"]) in found for e in expected)

        await run_until(runner, all_found)
        # A next generation (after any idle-time snapshot of its own); older chunks are purged.
        await runner.snapshot()
        generation = store.generation
    assert errors == [], "the correlator's connections met no permission violation"

    async with connected(cluster, nack) as nc:
        stored = await stored_correlations(nc)
        kv = await nc.jetstream(timeout=2).key_value(BUCKET)
        keys = set(await kv.keys())
    assert generation > snapshot.generation
    assert keys == {HEAD} | {k for k in keys if k.startswith(f"snapshot.{generation}.")}, keys
    for _, subject, msg_id, c in stored:
        assert subject == f"tapio.correlations.{LEVEL[c.confidence]}.{c.type}"
        assert msg_id == f"{c.id}:{c.revision}"
    assert [i for i, n in Counter(msg_id for _, _, msg_id, _ in stored).items() if n > 1] == [], (
        "no correlation revision published twice across the restart"
    )


async def test_correlator_cannot_create_its_bucket_and_works_with_a_client_made_one(
    cluster: NatsCluster, identities: dict[str, Identity], secrets: Secrets, tmp_path: Path
) -> None:
    nack = nack_identity(secrets, tmp_path / "nack")
    await reset_bucket(cluster, nack, spec=False)
    errors: list[str] = []
    try:
        async with connected(cluster, identities["tapio-correlator"], errors) as nc:
            with pytest.raises(StateStoreError):
                await StateStore.open(nc.jetstream(timeout=2), BUCKET)
            await violation(errors, "publish", f"$JS.API.STREAM.CREATE.{KV_STREAM}")
        async with connected(cluster, nack) as nc:
            with pytest.raises(nats.js.errors.NotFoundError):
                await nc.jsm().stream_info(KV_STREAM)
            # Where creating streams is permitted, the runner's create-if-missing path makes the
            # bucket itself (a nats-py bucket: no direct gets, so reads are STREAM.MSG.GET).
            await StateStore.open(nc.jetstream(timeout=5), BUCKET, replicas=contract.REPLICAS)
        errors.clear()
        async with connected(cluster, identities["tapio-correlator"], errors) as nc:
            js = nc.jetstream(timeout=2)
            assert not (await js.stream_info(KV_STREAM)).config.allow_direct
            store = await StateStore.open(js, BUCKET)
            await store.save(b"engine state", events_seq=7, correlations_seq=3)
            await store.save(b"engine state 2", events_seq=9, correlations_seq=4)
            loaded = await StateStore(store.kv).load()
        assert loaded is not None
        assert (loaded.engine, loaded.events_seq, loaded.generation) == (b"engine state 2", 9, 2)
        assert errors == []
    finally:
        await reset_bucket(cluster, nack)


@pytest.mark.parametrize(
    "subject",
    [
        "$JS.API.STREAM.DELETE.TAPIO_EVENTS",
        f"$JS.API.STREAM.DELETE.{KV_STREAM}",
        f"$JS.API.STREAM.PURGE.{KV_STREAM}",
        f"$JS.API.STREAM.UPDATE.{KV_STREAM}",
        f"$JS.API.STREAM.CREATE.{KV_STREAM}",
        "$JS.API.STREAM.INFO.KV_SOMEONE_ELSE",
        "$KV.SOMEONE_ELSE.key",
        # no consumer at all: its catch-up reads back with direct gets; NACK makes its durable
        "$JS.API.CONSUMER.CREATE.TAPIO_ALERTS.AbCdEf.tapio.alerts.>",
        "$JS.API.CONSUMER.CREATE.TAPIO_PROCESSED.AbCdEf.tapio.processed.>",
        "$JS.API.CONSUMER.CREATE.TAPIO_EVENTS",
        "$JS.API.CONSUMER.CREATE.TAPIO_EVENTS.AbCdEf.tapio.>",
        "$JS.API.CONSUMER.CREATE.TAPIO_EVENTS.AbCdEf.tapio.events.>",
        "$JS.API.CONSUMER.CREATE.TAPIO_CORRELATIONS.AbCdEf.tapio.correlations.>",
        "$JS.API.CONSUMER.CREATE.TAPIO_EVENTS.correlator",
        "$JS.API.CONSUMER.CREATE.TAPIO_EVENTS.correlator.tapio.events.>",
        "$JS.API.CONSUMER.DURABLE.CREATE.TAPIO_EVENTS.correlator",
        f"$JS.API.CONSUMER.CREATE.{KV_STREAM}",
        "$JS.API.CONSUMER.MSG.NEXT.TAPIO_EVENTS.AbCdEf",
        # ... and never as (or on) another component's durable consumer
        "$JS.API.CONSUMER.CREATE.TAPIO_EVENTS.pipeline.tapio.events.>",
        "$JS.API.CONSUMER.MSG.NEXT.TAPIO_EVENTS.pipeline",
        "$JS.API.CONSUMER.CREATE.TAPIO_CORRELATIONS.siem-exporter.tapio.correlations.>",
        "$JS.API.CONSUMER.MSG.NEXT.TAPIO_CORRELATIONS.siem-exporter",
        # direct gets only on the two streams it reads back
        "$JS.API.DIRECT.GET.TAPIO_ALERTS",
        "$JS.API.DIRECT.GET.TAPIO_PROCESSED",
    ],
)
async def test_correlator_is_refused_what_its_runner_does_not_do(
    cluster: NatsCluster, identities: dict[str, Identity], subject: str
) -> None:
    errors: list[str] = []
    async with connected(cluster, identities["tapio-correlator"], errors) as nc:
        await expect_denied(errors, subject, nc.request(subject, b"{}", timeout=0.5))


@pytest.mark.parametrize(
    ("name", "durable", "create_subject"),
    [
        (None, None, "$JS.API.CONSUMER.CREATE.TAPIO_EVENTS"),  # ephemeral, server-named
        ("forger", "forger", "$JS.API.CONSUMER.CREATE.TAPIO_EVENTS.forger.tapio.events.>"),
        ("correlator", "correlator", "$JS.API.CONSUMER.CREATE.TAPIO_EVENTS.correlator.tapio.events.>"),
        (
            None,
            "correlator",
            "$JS.API.CONSUMER.DURABLE.CREATE.TAPIO_EVENTS.correlator",
        ),  # older clients' form
    ],
)
async def test_correlator_cannot_make_a_push_consumer_deliver_into_another_stream(
    cluster: NatsCluster, identities: dict[str, Identity], secrets: Secrets, tmp_path: Path,
    name: str | None, durable: str | None, create_subject: str,
) -> None:  # fmt: skip
    """The forged delivery of infra/README.md: a push consumer on TAPIO_EVENTS whose deliver subject is
    tapio.alerts.forged would store events in TAPIO_ALERTS. The correlator's user may create no consumer."""
    nack = nack_identity(secrets, tmp_path / "nack")
    async with connected(cluster, nack) as nc:
        before = (await nc.jetstream(timeout=2).stream_info("TAPIO_ALERTS")).state.last_seq
    errors: list[str] = []
    async with connected(cluster, identities["tapio-correlator"], errors) as nc:
        js = nc.jetstream(timeout=1)
        config = ConsumerConfig(
            name=name,
            durable_name=durable,
            deliver_subject="tapio.alerts.forged",
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.NONE,
            filter_subject="tapio.events.>",
        )
        errors.clear()
        with pytest.raises(nats.errors.TimeoutError):
            await js.add_consumer("TAPIO_EVENTS", config)
        await violation(errors, "publish", create_subject)
    async with connected(cluster, nack) as nc:
        js = nc.jetstream(timeout=2)
        await anyio.sleep(1.0)
        assert (await js.stream_info("TAPIO_ALERTS")).state.last_seq == before, (
            "nothing delivered into TAPIO_ALERTS"
        )
        names = {c.name for c in await js.consumers_info("TAPIO_EVENTS")}
        assert "forger" not in names
