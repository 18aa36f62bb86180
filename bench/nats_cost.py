"""nats-server's own CPU per MESSAGE in Tapio's flows, each alone and with one feature toggled.

One local nats-server (the binary and config every bench starts: `EmbeddedNats`, file store), the
production layout (`tapio_jetstream.streams.apply_layout`), made afresh before every flow. The load
comes from the cheapest client there is (raw nats-py on one connection: pipelined publishes with a
reply inbox for the JetStream acks, `tapio_jetstream.pull.Puller` for the runtime's pull requests,
acks written together as the runtime writes them), so what is measured is the server. For each flow
the bench reads nats-server's CPU (user + system, `CpuBudget`) over the timed part and divides it by
the messages (or alerts) of the flow.

Events flows (messages as the correlator's bench sends them: the load generator's cluster, batched
per subject by the publisher: `--events` events a message, zstd above 2 KiB):
- `pub_*`: publishing at `--rate` messages/s alone (no consumer pulling): with / without
  `Nats-Msg-Id` (the stream's 120 s duplicate window), without the durables (streams only);
- `steady_*`: publishing at `--rate` while one durable follows (what a running system does: the
  consumer is caught up, so messages go out one by one as they are stored): the pipeline's durable
  (one filter `tapio.events.>`) or the correlator's (its filter subjects, `correlator_subjects`);
  toggles: no Nats-Msg-Id, bigger pulls, idle heartbeats, acks off (a durable with ack policy
  none: what the acks cost), CONSUMER.INFO polled every second;
- `drain_*`: the same messages preloaded, then drained (a backlog: the server fills each pull).
  Each steady line says how far the follower fell behind: a durable with several filter subjects
  costs the server several times more per message once it is more messages behind in a store block
  than the block has subjects (nats-server's filestore then matches every subject of the block
  against the filters for each next message); `filtered_caught_up` / `filtered_lagging` are the
  correlator's steady flows split that way;
- `info_call_*`: one CONSUMER.INFO of the correlator's / pipeline's durable on a stream holding
  `--backlog` undelivered messages (what the runtime's gauges ask every `info_interval`, 5 s);
  `info_poll_us_per_msg` is that at 5 s per consumer over `--rate` messages/s.
Exporter flows (per alert):
- `corr_steady`: correlations (one a message, with Nats-Msg-Id) at `--rate` while the exporter's
  durable follows with its pull size (500);
- `alerts_atomic`: the alerter's atomic batches (`--alert-batch` alerts, one publish ack) into
  TAPIO_ALERTS with two sink durables; `alerts_reset`: the same plus one CONSUMER.RESET of each
  sink's durable a batch (how the lanes kept positions until session 5); `alerts_reset_halfsecond`:
  at most one reset a sink every 0.5 s (how they keep them now); `alerts_single`: one publish an alert;
- `direct_get`: batched direct gets of stored alerts (`read_range`, a sink catching up).
KV: `kv_put_us_per_mib`: snapshot chunks (512 KiB) put into the correlator's bucket.

`--binary PATH` runs the flows on another nats-server (e.g. 2.10, the seed's manifests; the
pools are built on the default one, which has batched direct gets; alert flows need 2.12+).
The last line is key=value (us of nats-server CPU per message / alert / call). Prints the load
average: on a shared machine the CPU per message is the figure to trust, and flows are run in
`--rounds` interleaved rounds (every flow once a round) so toggles are compared at the same load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream
from cpu_budget import CpuBudget, loadavg_text
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from tapio.correlations.v1 import correlations_pb2
from tapio_common.config import NatsConfig
from tapio_common.nats.connect import connect
from tapio_common.nats.embedded import BINARY_ENV, EmbeddedNats, find_nats_server
from tapio_correlator_testing.loadgen import Mix, to_pb
from tapio_jetstream.layout import (
    ALERTS,
    CORRELATIONS,
    CORRELATOR,
    EVENTS,
    PIPELINE,
    SIEM_EXPORTER,
    ConsumerSpec,
    Layout,
    production_layout,
)
from tapio_jetstream.pull import Puller
from tapio_jetstream.readback import read_range
from tapio_jetstream.streams import apply_layout, consumer_config
from tapio_publisher import Publisher, PublisherSettings
from tapio_publisher.codec import MSG_ID_HEADER
from tapio_publisher.subjects import event_subject

Message = tuple[str, dict[str, str], bytes]  # subject, headers, data
ACK_LINGER = 0.005  # as the runtime: acks wait this long to share a write
SINKS = ("hec", "elasticsearch")
KV_BUCKET = "TAPIO_CORRELATOR_STATE"
KV_CHUNK = 512 * 1024


@attrs.frozen
class Flow:
    name: str
    group: str = "events"  # events | corr | alerts
    durable: str = ""  # the durable that follows ("" = nobody pulls)
    msgid: bool = True
    consumers: bool = True  # the layout's durables exist
    steady: bool = True  # publish at --rate while it follows; False: preload, time the drain
    batch: int = 64
    expires: float = 1.0
    heartbeat: float = 0.0
    info_every: float = 0.0
    big: bool = False  # --big-events a message
    alert_batch: int = 0  # alerts an atomic batch (0: --alert-batch)


FLOWS = (
    Flow("pub_plain", msgid=False),
    Flow("pub_msgid"),
    Flow("pub_nodurables", consumers=False),
    Flow("steady_plain", durable=PIPELINE),
    Flow("steady_filtered", durable=CORRELATOR),
    Flow("steady_filtered_nomsgid", durable=CORRELATOR, msgid=False),
    Flow("steady_filtered_batch256", durable=CORRELATOR, batch=256),
    Flow("steady_filtered_heartbeat", durable=CORRELATOR, heartbeat=0.5),
    Flow("steady_filtered_info1s", durable=CORRELATOR, info_every=1.0),
    Flow("steady_noack", durable="bench-noack"),
    Flow("steady_filtered_big", durable=CORRELATOR, big=True),
    Flow("drain_plain", durable=PIPELINE, steady=False),
    Flow("drain_filtered", durable=CORRELATOR, steady=False),
    Flow("corr_steady", group="corr", durable=SIEM_EXPORTER, batch=500),
    Flow("alerts_single", group="alerts"),
    Flow("alerts_atomic", group="alerts"),
    Flow("alerts_atomic_1000", group="alerts", alert_batch=1000),
    Flow("alerts_reset", group="alerts"),
    Flow("alerts_reset_halfsecond", group="alerts"),
)


def noack_spec() -> ConsumerSpec:
    """A durable on the events stream with ack policy none: the same flow without acks."""
    return ConsumerSpec(EVENTS, "bench-noack", "tapio.events.>", ack_policy="none", max_ack_pending=-1)


def sink_spec(sink: str) -> ConsumerSpec:
    """As tapio_exporters.service.delivery.sink_consumer: a position, never pulled."""
    return ConsumerSpec(ALERTS, f"{SIEM_EXPORTER}-{sink}", "tapio.alerts.>", max_deliver=-1)


# --- message pools -------------------------------------------------------------------------------


async def event_pool(nc: Client, tmp: str, events: int, per_message: int) -> list[Message]:
    """Events messages as the publisher makes them (loadgen cluster, batched per subject), read
    back from the stream they were published into."""
    js = nc.jetstream()
    await _fresh(js, production_layout(scale=0.01))
    mix = Mix(2000, 7)
    pbs = [to_pb(ev) for ev in mix.chunk(events)]
    settings = PublisherSettings.from_section(
        {"batch_max_events": per_message, "batch_linger": 5.0, "max_inflight": 256}, tmp + "/spool"
    )
    groups: dict[str, list[bytes]] = {}
    for pb in pbs:
        groups.setdefault(event_subject(pb), []).append(pb.SerializeToString())
    async with Publisher(settings, nc=nc) as pub:
        for subject, datas in groups.items():
            await pub.publish_encoded_many(subject, datas)
        await pub.flush()
    last = (await js.stream_info(EVENTS)).state.last_seq
    out: list[Message] = []
    async for m in read_range(nc, EVENTS, 1, last):
        headers = {k: v for k, v in m.headers.items() if k != MSG_ID_HEADER}
        out.append((m.subject, headers, m.data))
    return out


def correlation_pool(n: int) -> list[Message]:
    """Correlations as bench/exporter.py's load generator sends them (one a message)."""
    c = correlations_pb2.Correlation(
        type="cascading_failure", confidence=correlations_pb2.CONFIDENCE_HIGH, score=0.92,
        root_cause_event_id="ev-root", event_ids=[f"ev-{i}" for i in range(8)],
        summary="checkout fails after its database pod was OOM killed on node-7",
    )  # fmt: skip
    c.scope.namespace = "shop"
    c.scope.node = "node-7"
    c.scope.workload.kind = "Deployment"
    for rel in ("caused", "followed", "same_owner", "selected_by_service"):
        c.evidence.add(event_id="ev-1", relation=rel, weight=0.5)
    out: list[Message] = []
    for i in range(n):
        c.id = f"inc-{i:08d}"
        out.append(("tapio.correlations.cascading_failure", {}, c.SerializeToString()))
    return out


ALERT_BYTES = 800  # a stored alert's size (bench:exporter's alerts); nats-server never parses it


def alert_payload() -> bytes:
    return os.urandom(ALERT_BYTES)


# --- drivers -------------------------------------------------------------------------------------


async def _fresh(js: JetStreamContext, layout: Layout, extra: Sequence[ConsumerSpec] = ()) -> None:
    """Every stream of the layout deleted and made again (no state of the previous flow)."""
    for s in layout.streams:
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(s.name)
    await apply_layout(js, 1, layout=layout)
    for spec in extra:
        await js.add_consumer(spec.stream, consumer_config(spec))


class Publishing:
    """Pipelined JetStream publishes with a reply inbox; at most `window` unacknowledged."""

    def __init__(self, nc: Client, window: int = 256) -> None:
        self.nc = nc
        self.window = window
        self.sent = 0
        self.acked = 0
        self.errors = 0
        self.inbox = nc.new_inbox()
        self._room = anyio.Event()

    async def start(self) -> None:
        await self.nc.subscribe(self.inbox + ".*", cb=self._on_ack)

    async def _on_ack(self, msg: Msg) -> None:
        self.acked += 1
        if b'"error"' in msg.data[:40]:
            self.errors += 1
        self._room.set()

    async def publish(self, subject: str, headers: dict[str, str], data: bytes) -> None:
        while self.sent - self.acked >= self.window:
            self._room = anyio.Event()
            await self._room.wait()
        self.sent += 1
        await self.nc.publish(subject, data, reply=f"{self.inbox}.{self.sent}", headers=headers or None)

    async def settle(self, within: float = 30.0) -> None:
        with anyio.fail_after(within):
            while self.acked < self.sent:
                self._room = anyio.Event()
                await self._room.wait()


async def publish_paced(pub: Publishing, msgs: Sequence[Message], rate: float, msgid: bool, tag: str) -> None:
    """`msgs` at `rate` a second (10 ms ticks), each a fresh Nats-Msg-Id when `msgid`."""
    tick = 0.01
    per_tick = max(1, int(rate * tick))
    start = time.monotonic()
    for i, (subject, headers, data) in enumerate(msgs):
        if i % per_tick == 0:
            delay = start + (i // per_tick) * tick - time.monotonic()
            if delay > 0:
                await anyio.sleep(delay)
        h = {**headers, MSG_ID_HEADER: f"{tag}-{i}"} if msgid else headers
        await pub.publish(subject, h, data)
    await pub.settle()


class Follower:
    """The runtime's pull pattern on one durable (`Puller`: 2 requests of `batch` open, `expires`),
    every message acked, acks written together (up to `batch` or 5 ms)."""

    def __init__(self, nc: Client, stream: str, durable: str, flow: Flow, ack: bool) -> None:
        self.nc = nc
        send, self.receive = anyio.create_memory_object_stream[Msg](max_buffer_size=flow.batch * 2)
        self.puller = Puller(nc, stream, durable, send, batch=flow.batch, ahead=2, expires=flow.expires)
        if flow.heartbeat:
            body = {
                "batch": flow.batch,
                "expires": int(flow.expires * 1e9),
                "idle_heartbeat": int(flow.heartbeat * 1e9),
            }
            self.puller._body = json.dumps(body).encode()
        self.ack = ack
        self.count = 0

    async def run(self, receive: MemoryObjectReceiveStream[Msg]) -> None:
        acks: list[str] = []
        while True:
            msg: Msg | None
            try:
                msg = receive.receive_nowait()
            except anyio.WouldBlock:
                msg = None
                with anyio.move_on_after(ACK_LINGER if acks else 3600):
                    msg = await receive.receive()
                if msg is None:
                    for reply in acks:
                        await self.nc.publish(reply)
                    acks = []
                    continue
            self.count += 1
            if self.ack and msg is not None and msg.reply:
                acks.append(msg.reply)
                if len(acks) >= self.puller.batch:
                    for reply in acks:
                        await self.nc.publish(reply)
                    acks = []


async def wait_count(get: Callable[[], int], n: int, within: float = 60.0) -> None:
    """Until `get()` reaches n (a counter the subscription callbacks move)."""
    with anyio.fail_after(within):
        while get() < n:  # noqa: ASYNC110 - polled: the counter is moved per message, no event each
            await anyio.sleep(0.01)


async def poll_info(js: JetStreamContext, stream: str, durable: str, every: float) -> None:
    while True:
        await anyio.sleep(every)
        await js.consumer_info(stream, durable)


# --- flows ---------------------------------------------------------------------------------------


@attrs.define
class Bench:
    nc: Client
    js: JetStreamContext
    budget: CpuBudget
    small: list[Message]
    big: list[Message]
    corrs: list[Message]
    rate: float
    seconds: float
    alert_batch: int
    runs: int = 0
    delivered: dict[str, float] = attrs.Factory(dict)  # share of the flow's messages the durable takes
    lag: dict[str, int] = attrs.Factory(dict)  # most messages the follower was behind the publisher
    unfinished: dict[str, float] = attrs.Factory(dict)  # share delivered when the wait ran out
    patience: float = 60.0  # seconds a flow waits for its last message

    def _take(self, pool: Sequence[Message], n: int) -> list[Message]:
        return [pool[i % len(pool)] for i in range(n)]

    async def measure(self, body: Callable[[], Awaitable[None]], units: Callable[[], int]) -> float:
        self.budget.start()
        await body()
        self.budget.stop()
        return self.budget.per_unit_us(units())["nats-server"]

    async def run(self, flow: Flow) -> float:
        """nats-server CPU us per message (per alert for the alert flows) of one flow."""
        self.runs += 1
        tag = f"r{self.runs}"
        layout = production_layout()
        if not flow.consumers:
            layout = attrs.evolve(layout, consumers=())
        extra = [noack_spec()] if flow.durable == "bench-noack" else []
        if flow.group == "alerts":
            extra = [sink_spec(s) for s in SINKS]
        await _fresh(self.js, layout, extra)
        if flow.group == "alerts":
            return await self._alerts(flow, tag)
        pool = self.corrs if flow.group == "corr" else self.big if flow.big else self.small
        rate = self.rate / 4 if flow.big else self.rate
        msgs = self._take(pool, int(rate * self.seconds))
        stream = CORRELATIONS if flow.group == "corr" else EVENTS
        pub = Publishing(self.nc)
        await pub.start()
        if not flow.durable:
            return await self.measure(
                lambda: publish_paced(pub, msgs, rate, flow.msgid, tag), lambda: len(msgs)
            )
        follower = Follower(self.nc, stream, flow.durable, flow, ack=flow.durable != "bench-noack")
        spec = noack_spec() if flow.durable == "bench-noack" else layout.consumer(flow.durable)
        expected = sum(1 for subject, _, _ in msgs if spec.takes(subject))
        self.delivered[flow.name] = expected / len(msgs)
        if not flow.steady:
            for subject, headers, data in msgs:
                await pub.publish(
                    subject, {**headers, MSG_ID_HEADER: f"{tag}-{len(headers)}-{pub.sent}"}, data
                )
            await pub.settle()
        await follower.puller.start()
        async with anyio.create_task_group() as tg:

            async def body() -> None:
                tg.start_soon(follower.puller.run)
                tg.start_soon(follower.run, follower.receive)
                if flow.info_every:
                    tg.start_soon(poll_info, self.js, stream, flow.durable, flow.info_every)
                if flow.steady:
                    tg.start_soon(self._watch_lag, flow.name, pub, follower, self.delivered[flow.name])
                if flow.steady:
                    await publish_paced(pub, msgs, rate, flow.msgid, tag)
                try:
                    await wait_count(lambda: follower.count, expected, within=self.patience)
                except TimeoutError:  # the server cannot deliver them in time: CPU per message delivered
                    self.unfinished[flow.name] = follower.count / max(expected, 1)
                await anyio.sleep(ACK_LINGER * 4)  # the last acks out

            delivered = self.delivered[flow.name]
            us = await self.measure(
                body, lambda: int(follower.count / delivered) if flow.name in self.unfinished else len(msgs)
            )
            follower.puller.stop()
            tg.cancel_scope.cancel()
        await follower.puller.close()
        return us

    async def _watch_lag(self, name: str, pub: Publishing, follower: Follower, share: float) -> None:
        """Most messages the follower is behind (the multi-filter cost depends on it)."""
        self.lag[name] = 0
        while True:
            await anyio.sleep(0.05)
            self.lag[name] = max(self.lag[name], int(pub.acked * share) - follower.count)

    async def _alerts(self, flow: Flow, tag: str) -> float:
        data = alert_payload()
        n = int(self.rate * self.seconds)
        size = flow.alert_batch or self.alert_batch
        batches = max(1, n // size)
        pub = Publishing(self.nc)
        await pub.start()
        seq = 0
        kept_at = 0.0

        async def body() -> None:
            nonlocal seq, kept_at
            period = size / self.rate
            start = time.monotonic()
            for b in range(batches):
                delay = start + b * period - time.monotonic()
                if delay > 0:
                    await anyio.sleep(delay)
                if flow.name == "alerts_single":
                    for i in range(size):
                        await pub.publish("tapio.alerts.high.firing", {MSG_ID_HEADER: f"{tag}-{b}-{i}"}, data)
                    await pub.settle()
                else:
                    await self._atomic(data, f"{tag}-{b}", size)
                seq += size
                due = flow.name == "alerts_reset" or (
                    flow.name == "alerts_reset_halfsecond" and time.monotonic() - kept_at >= 0.5
                )
                if due:
                    kept_at = time.monotonic()
                    for sink in SINKS:
                        subject = f"$JS.API.CONSUMER.RESET.{ALERTS}.{SIEM_EXPORTER}-{sink}"
                        reply = await self.nc.request(
                            subject, json.dumps({"seq": seq + 1}).encode(), timeout=5
                        )
                        if b'"error"' in reply.data:
                            raise RuntimeError(f"consumer reset refused: {reply.data!r}")

        return await self.measure(body, lambda: batches * size)

    async def _atomic(self, data: bytes, batch_id: str, n: int) -> None:
        """One atomic batch (ADR-50): Nats-Batch-Id/-Sequence, the last with Nats-Batch-Commit, one ack."""
        for i in range(1, n + 1):
            headers = {
                "Nats-Batch-Id": batch_id,
                "Nats-Batch-Sequence": str(i),
                MSG_ID_HEADER: f"{batch_id}-{i}",
            }
            if i == n:
                headers["Nats-Batch-Commit"] = "1"
                reply = await self.nc.request("tapio.alerts.high.firing", data, headers=headers, timeout=10)
                if b'"error"' in reply.data:
                    raise RuntimeError(f"atomic batch refused: {reply.data!r}")
            else:
                await self.nc.publish("tapio.alerts.high.firing", data, headers=headers)

    async def info_call(self, durable: str, backlog: int) -> float:
        """nats-server CPU us of one CONSUMER.INFO of `durable` on a stream of `backlog` messages."""
        await _fresh(self.js, production_layout())
        pub = Publishing(self.nc)
        await pub.start()
        for subject, headers, data in self._take(self.small, backlog):
            await pub.publish(subject, headers, data)
        await pub.settle(within=120)
        calls = 200

        async def body() -> None:
            for _ in range(calls):
                await self.js.consumer_info(EVENTS, durable)

        return await self.measure(body, lambda: calls)

    async def reset_call(self) -> float:
        """nats-server CPU us of one CONSUMER.RESET of a sink's durable (what lanes.keep sends)."""
        await _fresh(self.js, production_layout(), [sink_spec(s) for s in SINKS])
        pub = Publishing(self.nc)
        await pub.start()
        data = alert_payload()
        for i in range(2000):
            await pub.publish("tapio.alerts.high.firing", {MSG_ID_HEADER: f"rs-{i}"}, data)
        await pub.settle()
        calls = 400
        subject = f"$JS.API.CONSUMER.RESET.{ALERTS}.{SIEM_EXPORTER}-{SINKS[0]}"

        async def body() -> None:
            for i in range(calls):
                await self.nc.request(subject, json.dumps({"seq": 1 + i * 5}).encode(), timeout=5)

        return await self.measure(body, lambda: calls)

    async def direct_get(self, n: int) -> float:
        await _fresh(self.js, production_layout())
        data = alert_payload()
        pub = Publishing(self.nc)
        await pub.start()
        for i in range(n):
            await pub.publish("tapio.alerts.high.firing", {MSG_ID_HEADER: f"dg-{i}"}, data)
        await pub.settle()

        async def body() -> None:
            got = 0
            async for _ in read_range(self.nc, ALERTS, 1, n):
                got += 1

        return await self.measure(body, lambda: n)

    async def kv_put(self, mib: int) -> float:
        with contextlib.suppress(NotFoundError):
            await self.js.delete_key_value(KV_BUCKET)
        kv = await self.js.create_key_value(api.KeyValueConfig(bucket=KV_BUCKET, history=1))
        chunk = os.urandom(KV_CHUNK)  # compressed state: incompressible
        chunks = mib * 1024 * 1024 // KV_CHUNK

        async def body() -> None:
            for i in range(chunks):
                await kv.put(f"snapshot.1.{i}", chunk)
            for i in range(chunks):
                await kv.purge(f"snapshot.1.{i}")

        return await self.measure(body, lambda: mib)


async def main_async(args: argparse.Namespace) -> dict[str, float]:
    chosen = [f for f in FLOWS if not args.only or any(o in f.name for o in args.only.split(","))]
    with tempfile.TemporaryDirectory(prefix="tapio-bench-nats-") as tmp:
        with EmbeddedNats(tmp + "/pool") as pool_server:  # the pools need batched direct gets (2.11+)
            nc = await connect(NatsConfig(urls=(pool_server.url,)), "bench-nats-pool")
            small = await event_pool(nc, tmp, 40_000, args.events)
            big = await event_pool(nc, tmp, 160_000, args.big_events)
            await nc.close()
        for name, pool, events in (("small", small, 40_000), ("big", big, 160_000)):
            sizes = [len(d) for _, _, d in pool]
            print(f"bench: {name} pool: {len(pool):,} events messages of the load generator's cluster, "
                  f"{events / len(pool):.1f} events and {statistics.mean(sizes):.0f} bytes a message on average, "
                  f"{len({s for s, _, _ in pool}):,} subjects")  # fmt: skip
        if args.binary:
            os.environ[BINARY_ENV] = args.binary
        with EmbeddedNats(tmp + "/js") as server:
            pid = server.proc.pid if server.proc is not None else 0
            version = subprocess.run(  # noqa: ASYNC221 - once, before anything is measured
                [find_nats_server(), "--version"], capture_output=True, text=True, check=False
            ).stdout.strip()
            print(f"bench: {version} (pid {pid}), {loadavg_text()}", flush=True)
            nc = await connect(NatsConfig(urls=(server.url,)), "bench-nats-cost")
            out = await _run_all(args, chosen, nc, pid, small, big)
            await nc.close()
    return out


async def _run_all(
    args: argparse.Namespace,
    chosen: list[Flow],
    nc: Client,
    pid: int,
    small: list[Message],
    big: list[Message],
) -> dict[str, float]:
    js = nc.jetstream()
    bench = Bench(nc, js, CpuBudget({"nats-server": pid}), small, big, correlation_pool(len(small)),
                  args.rate, args.seconds, args.alert_batch)  # fmt: skip
    results: dict[str, list[float]] = {}
    by_lag: dict[bool, list[float]] = {False: [], True: []}  # correlator's durable, steady: lagging?
    subjects = len({s for s, _, _ in small})
    for r in range(args.rounds):  # interleaved: every flow once a round, so toggles see the same load
        for flow in chosen:
            us = await bench.run(flow)
            results.setdefault(flow.name, []).append(us)
            per = "alert" if flow.group == "alerts" else "message"
            share = bench.delivered.get(flow.name)
            taken = f" ({share:.0%} of them delivered)" if share is not None and share < 1 else ""
            if flow.name in bench.unfinished:
                taken += (
                    f", NOT all delivered in {bench.patience:.0f} s: {bench.unfinished.pop(flow.name):.0%}"
                )
            if flow.name in bench.lag:
                taken += f", the follower at most {bench.lag[flow.name]:,} messages behind"
                if flow.durable == CORRELATOR and not flow.big:
                    by_lag[bench.lag[flow.name] > subjects].append(us)
            print(
                f"round {r + 1} {flow.name}: nats-server {us:.1f} us CPU a {per}{taken}; {loadavg_text()}",
                flush=True,
            )
    out = {k: statistics.median(v) for k, v in results.items()}
    for lagging, values in by_lag.items():
        if values:
            key = "filtered_lagging" if lagging else "filtered_caught_up"
            out[key] = statistics.median(values)
            print(f"correlator's durable, steady flows {'more than' if lagging else 'at most'} {subjects:,} messages behind "
                  f"(the subjects in the stream): {out[key]:.1f} us a message (median of {len(values)})")  # fmt: skip
    if not args.only or "calls" in args.only.split(","):
        for durable in (CORRELATOR, PIPELINE):
            us = await bench.info_call(durable, args.backlog)
            out[f"info_call_{'filtered' if durable == CORRELATOR else 'plain'}"] = us
            print(
                f"CONSUMER.INFO of {durable} with {args.backlog:,} messages pending: {us:.0f} us CPU a call"
            )
        out["info_poll_us_per_msg"] = out["info_call_filtered"] / (5.0 * args.rate)
        print(
            f"  at the runtime's info_interval (5 s) over {args.rate:,.0f} messages/s: {out['info_poll_us_per_msg']:.3f} us a message"
        )
        out["reset_call"] = await bench.reset_call()
        print(f"CONSUMER.RESET of a sink's durable: {out['reset_call']:.0f} us CPU a call")
        out["direct_get"] = await bench.direct_get(int(args.rate * args.seconds))
        print(f"direct gets (batched, a sink catching up): {out['direct_get']:.1f} us CPU an alert")
        out["kv_put_us_per_mib"] = await bench.kv_put(32)
        print(f"KV snapshot chunks (512 KiB): {out['kv_put_us_per_mib']:.0f} us CPU a MiB written and purged")
    return out


def _key(name: str) -> str:
    if name in ("info_poll_us_per_msg", "kv_put_us_per_mib"):
        return name
    if name.startswith(("info_call", "reset_call")):
        return f"{name}_us"
    if name.startswith(("alerts_", "direct_get")):
        return f"{name}_us_per_alert"
    return f"{name}_us_per_msg"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="bench:nats_cost", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seconds", type=float, default=20.0,
                   help="scale: each flow gets SECONDS/8 of load a round (default 20: 2.5 s)")  # fmt: skip
    p.add_argument(
        "--rate", type=float, default=5000.0, help="messages (alerts) a second offered (default 5000)"
    )
    p.add_argument(
        "--events", type=int, default=9, help="events a message at most (default 9, the correlator bench's)"
    )
    p.add_argument(
        "--big-events",
        type=int,
        default=100,
        help="events a message at most in steady_filtered_big (default 100)",
    )
    p.add_argument("--alert-batch", type=int, default=100, help="alerts an atomic batch (default 100)")
    p.add_argument(
        "--backlog",
        type=int,
        default=50_000,
        help="messages pending for the CONSUMER.INFO cost (default 50,000)",
    )
    p.add_argument(
        "--rounds", type=int, default=2, help="interleaved rounds of every flow (default 2; medians)"
    )
    p.add_argument("--binary", default="",
                   help=f"another nats-server binary for the flows (as {BINARY_ENV}; the pools are built on the default one)")  # fmt: skip
    p.add_argument("--only", default="",
                   help="comma-separated parts of flow names to run (default all; `calls`: the per-call costs)")  # fmt: skip
    args = p.parse_args(argv)
    args.seconds = max(0.5, args.seconds / 8)
    out = anyio.run(main_async, args)
    if "drain_plain" in out and "drain_filtered" in out:
        print(
            f"multi-filter durable from a backlog: x{out['drain_filtered'] / out['drain_plain']:.1f} the single-filter one"
        )
    if "alerts_atomic" in out and "alerts_single" in out:
        print(
            f"atomic batches of {args.alert_batch}: x{out['alerts_atomic'] / out['alerts_single']:.1f} single publishes"
        )
    print(f"bench: {loadavg_text()}")
    one = os.getloadavg()[0]
    print(
        " ".join(f"{_key(k)}={v:.{3 if k == 'info_poll_us_per_msg' else 1}f}" for k, v in out.items())
        + f" load1={one:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
