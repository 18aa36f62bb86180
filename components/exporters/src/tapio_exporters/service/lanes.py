"""Sink lanes: how every configured sink gets each alert stored in TAPIO_ALERTS, in stream order,
without the exporter reading back what it has just published.

Fed by the alerter: once an atomic publish is confirmed (the stream sequence of every alert known),
`Lanes.deliver` hands the batch, models and stored bytes, to every LIVE sink at once, from memory;
the alerter returns (the runtime acks the correlations) once each live sink confirmed. A sink whose
delivery fails falls BEHIND and never blocks the others: its catch-up task reads TAPIO_ALERTS from
its own position (direct gets, batches of the sink's size, retried in place with backoff) until it
reaches the head (the last alert the alerter stored), then rejoins the live path under the
alerter's publish lock, so no alert slips between the two. Only a sink that has just confirmed a
step outside that lock makes its last step inside it: one failing slowly never holds the others.

Position: every alert at or below a sink's position is confirmed by that sink. It is kept in the
sink's durable consumer on TAPIO_ALERTS (`siem-exporter-<sink>`, nothing is pulled from it): after
each confirmed batch the consumer is reset (`$JS.API.CONSUMER.RESET`, nats-server 2.14+) to
position + 1 (at most every KEEP_EVERY while alerts flow, and on a quiet input and at stop), so
its ack floor is the position and its pending count the sink's lag. At start a
sink whose position is below the stream's last sequence starts behind (a new sink: everything the
stream holds). A position that could not be stored (NATS unavailable) goes with the next batch or
on the next quiet second; a crash in between re-sends at most the alerts confirmed since (at least
once: up to KEEP_EVERY of them, or more while NATS could not store it).

A live batch advances a position only when its sequences cover every one from the head + 1 up to
its last (this process wrote all of them); on a quiet input the stream's last sequence is compared
with the head. Otherwise something else wrote to the stream (another exporter replica, a hand-made
alert) and every lane catches up from the stream instead, so a second writer loses nothing (it
makes sinks receive some alerts twice: run one replica). A batch holding a sequence at or below the
head (a repeat of an alert stored before, or a stream deleted and provisioned anew, its sequences
from 1 again) has the stream's creation time checked: a stream made again sets every position to 0
(each durable is made again when its position is next kept), so its alerts reach every sink.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime

import anyio
from google.protobuf.message import DecodeError
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.js.api import StreamInfo
from nats.js.errors import NotFoundError

from tapio.alerts.v1 import alerts_pb2
from tapio_common.errors import ContractError
from tapio_common.logging import get_logger
from tapio_common.model.fast import alert_from_pb
from tapio_exporters.errors import ExporterError
from tapio_exporters.service.delivery import SinkDelivery, StoppedError, StoredAlert
from tapio_exporters.service.metrics import ExporterMetrics
from tapio_jetstream.layout import ConsumerSpec
from tapio_jetstream.readback import ReadBackError, StoredMessage, read_range
from tapio_jetstream.streams import consumer_config

log = get_logger(__name__)

RETRY = 1.0  # seconds before a catch-up step that failed (NATS, a sink failing at the head) goes again
# A position is stored at most this often while alerts flow (each CONSUMER.RESET costs nats-server
# ~0.6 ms: it writes the consumer's state and recounts its pending), and on a quiet input and at stop.
KEEP_EVERY = 0.5


class PositionError(ExporterError):
    """A sink's position cannot be read or kept (its durable consumer, nats-server < 2.14)."""

    stage = "position"


class Lane:
    """One sink: live or behind, and its position."""

    def __init__(self, nc: NATS, delivery: SinkDelivery, spec: ConsumerSpec, batch: int) -> None:
        self.nc = nc
        self.delivery = delivery
        self.spec = spec
        self.batch = batch
        self.position = 0
        self.stored = 0  # the position its durable consumer holds
        self.kept_at = 0.0  # monotonic time it was last stored
        self.live = False
        self.behind_since: float | None = None
        self.wake = anyio.Event()

    @property
    def name(self) -> str:
        return self.delivery.sink.name

    async def open(self) -> None:
        """Reads the position from the sink's durable consumer (created when missing: position 0)."""
        js = self.nc.jetstream()
        try:
            try:
                info = await js.consumer_info(self.spec.stream, self.spec.durable)
            except NotFoundError:
                info = await js.add_consumer(self.spec.stream, consumer_config(self.spec))
                log.info("sink position created", sink=self.name, consumer=self.spec.durable)
        except (NatsError, TimeoutError) as e:
            raise PositionError(
                f"sink {self.name}: cannot read its position (consumer {self.spec.durable}): {e or type(e).__name__}"
            ) from e
        floor = info.ack_floor.stream_seq if info.ack_floor is not None else 0
        self.position = self.stored = int(floor or 0)

    async def keep(self, *, soon: bool = False) -> None:
        """Stores the position in the durable consumer (reset to position + 1); a failure is logged
        and counted, and the next batch stores it again. `soon`: only when the last store is
        KEEP_EVERY old (a confirmed batch; the quiet input and the stop store what is left)."""
        if self.stored == self.position or (soon and time.monotonic() - self.kept_at < KEEP_EVERY):
            return
        self.kept_at = time.monotonic()
        target = self.position
        try:
            try:
                error = await self._reset(target)
            except (NoRespondersError, TimeoutError):
                if await self._exists():
                    raise
                # its durable went with a stream made again, or was deleted: made again
                await self.nc.jetstream().add_consumer(self.spec.stream, consumer_config(self.spec))
                log.info("sink position made again", sink=self.name, consumer=self.spec.durable)
                error = await self._reset(target)
        except (NatsError, TimeoutError, ValueError) as e:
            error = str(e) or type(e).__name__
        if error:
            self.delivery.metrics.error("position")
            log.warning(
                "sink position not stored (again with the next batch)", sink=self.name, error=str(error)
            )
            return
        self.stored = target

    async def _exists(self) -> bool:
        try:
            await self.nc.jetstream().consumer_info(self.spec.stream, self.spec.durable)
        except NotFoundError:
            return False
        return True

    async def _reset(self, position: int) -> object:
        subject = f"$JS.API.CONSUMER.RESET.{self.spec.stream}.{self.spec.durable}"
        reply = await self.nc.request(subject, json.dumps({"seq": position + 1}).encode(), timeout=5.0)
        return json.loads(reply.data or b"{}").get("error")

    def fall_behind(self) -> None:
        if self.live:
            log.warning("sink behind: catching up from the stream", sink=self.name, position=self.position)
        self.live = False
        self.behind_since = self.behind_since or time.monotonic()
        self.wake.set()

    def join(self) -> None:
        self.live = True
        if self.behind_since is not None:
            log.info(
                "sink caught up: live again",
                sink=self.name,
                after=round(time.monotonic() - self.behind_since, 1),
            )
        self.behind_since = None
        self.wake = anyio.Event()

    def status(self, head: int) -> tuple[bool, str]:
        ok, detail = self.delivery.status()
        if not self.live:
            detail = f"catching up, {head - self.position} alerts behind; {detail}"
        return ok, detail


class Lanes:
    """Every sink's lane; `head` is the last stream sequence the alerter stored."""

    def __init__(self, nc: NATS, lanes: Sequence[Lane], stream: str, metrics: ExporterMetrics) -> None:
        self.nc = nc
        self.lanes = list(lanes)
        self.stream = stream
        self.metrics = metrics
        self.head = 0
        self.created: datetime | None = None  # when the alerts stream was made
        self.epoch = 0  # stream made again this many times: a catch-up step of an older one is void
        self.lock = anyio.Lock()  # the alerter's publish lock: a lane joins while nothing is published
        self.stopping = False

    async def open(self, head: int) -> None:
        """Positions read; a sink whose position is below `head` (the stream's last) starts behind."""
        self.head = head
        self.created = (await self.nc.jetstream().stream_info(self.stream)).created
        for lane in self.lanes:
            await lane.open()
            if lane.position >= head:
                lane.join()
            else:
                lane.fall_behind()
            self._lag(lane)

    async def deliver(self, batch: Sequence[StoredAlert]) -> None:
        """A stored batch to every live sink (called under `lock`, after its publish is confirmed)."""
        if not batch:
            return
        seqs = {s.seq for s in batch}
        last = max(seqs)
        if min(seqs) <= self.head and await self._made_again(last):
            return  # every sink catches up from the stream, this batch included
        whole = 0 not in seqs and (last <= self.head or seqs >= set(range(self.head + 1, last + 1)))
        live = [lane for lane in self.lanes if lane.live]
        if not whole:
            log.warning("alerts stream written by someone else too: every sink catches up from it",
                        head=self.head, last=last)  # fmt: skip
            for lane in live:
                lane.fall_behind()
            live = []
        before, self.head = self.head, max(self.head, last)
        async with anyio.create_task_group() as tg:
            for lane in live:
                tg.start_soon(self._offer, lane, batch, before, last)

    async def notice_others(self) -> None:
        """On a quiet input: a position not stored with its batch is stored now; alerts stored past
        the head that this process did not hand over (another writer; a batch stored but
        unconfirmed) make every live sink catch up."""
        if not self.lanes:
            return
        for lane in self.lanes:
            if lane.live and lane.stored != lane.position:  # not stored with its batch (NATS unavailable)
                await lane.keep()
        try:
            info = await self.nc.jetstream().stream_info(self.stream)
        except (NatsError, TimeoutError) as e:
            log.debug("stream head unknown", error=str(e) or type(e).__name__)
            return
        last = int(info.state.last_seq)
        async with self.lock:
            if self._renewed(info):
                return
            if last > self.head:
                for lane in self.lanes:
                    if lane.live:
                        log.info(
                            "alerts stored by someone else: catching up",
                            sink=lane.name,
                            head=self.head,
                            last=last,
                        )
                        lane.fall_behind()
                self.head = last
                for lane in self.lanes:
                    self._lag(lane)

    async def _made_again(self, last: int) -> bool:
        """Under `lock`: True when every sink now catches up from the stream (it was made again, or
        cannot be asked: then from each position, and the next quiet second asks again)."""
        try:
            info = await self.nc.jetstream().stream_info(self.stream)
        except (NatsError, TimeoutError) as e:
            log.warning(
                "alerts stream unknown: every sink catches up from it", error=str(e) or type(e).__name__
            )
            self.head = max(self.head, last)
            for lane in self.lanes:
                lane.fall_behind()
                self._lag(lane)
            return True
        return self._renewed(info)

    def _renewed(self, info: StreamInfo) -> bool:
        """Under `lock`: a stream made again (another creation time) sets every position to 0."""
        if info.created == self.created:
            return False
        log.error("alerts stream made again: every sink catches up from its first alert",
                  stream=self.stream, head=self.head, last=info.state.last_seq)  # fmt: skip
        self.created, self.head = info.created, int(info.state.last_seq)
        self.epoch += 1
        for lane in self.lanes:
            lane.position, lane.stored = 0, -1
            lane.fall_behind()
            self._lag(lane)
        return True

    async def _offer(self, lane: Lane, batch: Sequence[StoredAlert], before: int, last: int) -> None:
        if lane.position < before:  # an earlier batch did not reach it (an error in between)
            lane.fall_behind()
            return
        todo = [s for s in batch if s.seq > lane.position]
        if not await lane.delivery.deliver(todo, retry=False):
            lane.fall_behind()
            return
        lane.position = max(lane.position, last)
        await lane.keep(soon=True)
        self._lag(lane)

    def _lag(self, lane: Lane) -> None:
        self.metrics.sink_lag.labels(sink=lane.name).set(max(0, self.head - lane.position))

    async def keep_all(self) -> None:
        """Stores every position not stored yet (at stop, once the consumers returned)."""
        for lane in self.lanes:
            await lane.keep()

    def stop(self) -> None:
        """Catch-up ends after the step in hand (a failing sink's step at once)."""
        self.stopping = True
        for lane in self.lanes:
            lane.delivery.stopping = True
            lane.wake.set()

    async def run(self) -> None:
        """Every lane's catch-up, until `stop()`."""
        async with anyio.create_task_group() as tg:
            for lane in self.lanes:
                tg.start_soon(self._catch_up, lane)

    async def _catch_up(self, lane: Lane) -> None:
        proven = False  # the sink confirmed a step outside the publish lock since it last failed
        while not self.stopping:
            if lane.live:
                await lane.wake.wait()
                proven = False
                continue
            try:
                if not proven or self.head - lane.position > lane.batch:
                    # outside the publish lock, retried in place until confirmed: a sink that fails
                    # slowly (a timeout, an indexer that does not acknowledge) holds only itself
                    proven = await self._step(lane, min(self.head, lane.position + lane.batch), retry=True)
                    if proven:
                        continue
                else:
                    async with self.lock:  # the rest under the publish lock: nothing is stored meanwhile
                        if self.head - lane.position > lane.batch:
                            continue
                        if await self._step(lane, self.head, retry=False):
                            lane.join()
                            continue
                    proven = False  # failed in the lock: its next attempt is outside it again
            except StoppedError:
                return
            except (ReadBackError, NatsError) as e:
                self.metrics.error("catch_up")
                log.warning("sink catch-up: cannot read the alerts stream", sink=lane.name, error=str(e))
            await anyio.sleep(RETRY)

    async def _step(self, lane: Lane, last: int, *, retry: bool) -> bool:
        """Reads position + 1 .. `last` back and delivers it; True once confirmed up to `last`.

        A read that ends before `last` (a replica answering direct gets before it caught up with the
        leader) moves the position only as far as it read; the rest is read again next step."""
        epoch = self.epoch
        batch: list[StoredAlert] = []
        read = lane.position
        if last > lane.position:
            async for msg in read_range(self.nc, self.stream, lane.position + 1, last):
                read = msg.seq
                stored = self._decoded(msg)
                if stored is not None:
                    batch.append(stored)
        upto = last if read >= last else await self._short(lane, read, last)
        if not await lane.delivery.deliver(batch, retry=retry) or epoch != self.epoch:
            return False  # not confirmed, or the stream was made again meanwhile (position 0 now)
        lane.position = max(lane.position, upto)
        await lane.keep(soon=True)
        self._lag(lane)
        return upto >= last

    async def _short(self, lane: Lane, read: int, last: int) -> int:
        """How far a read of `.. last` that ended at `read` may move a position: to `last` when the
        stream (asked of its leader) no longer holds anything up to it (aged out), else to `read`."""
        try:
            first = int((await self.nc.jetstream().stream_info(self.stream)).state.first_seq)
        except (NatsError, TimeoutError) as e:
            first = 0  # unknown: only what was read counts
            log.debug("alerts stream state unknown", error=str(e) or type(e).__name__)
        if first > last:
            return last
        self.metrics.error("catch_up_short")
        log.warning("sink catch-up: the alerts stream answered short of what it holds, reading again",
                    sink=lane.name, read=read, last=last)  # fmt: skip
        return read

    def _decoded(self, msg: StoredMessage) -> StoredAlert | None:
        try:
            alert = alert_from_pb(alerts_pb2.Alert.FromString(msg.data))
        except (DecodeError, ContractError) as e:
            self.metrics.drop("undecodable")
            log.error("unreadable alert in the alerts stream skipped", seq=msg.seq, error=str(e))
            return None
        return StoredAlert(msg.seq, alert, msg.data, msg.headers)
