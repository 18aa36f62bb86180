"""The publisher's sending half: where each encoded message goes (the ack window or the spool), what
its ack or failure does, and whether NATS is reachable.

Fed by `Publisher` (tapio_publisher.publisher) with the `Outgoing` messages its encoder sealed, and
by the window's callbacks with their acks and failures; it owns the ack window, the receipts of
callers who await a message and the spooler (whose replay sends through `send` again).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import anyio.lowlevel
from nats.aio.client import Client

from tapio_common.logging import get_logger
from tapio_publisher import atomic
from tapio_publisher.errors import PublisherError, PublishRejectedError
from tapio_publisher.message import Ack, Failure, Outgoing
from tapio_publisher.metrics import PublisherMetrics
from tapio_publisher.receipts import Receipt, Receipts
from tapio_publisher.settings import PublisherSettings
from tapio_publisher.spooler import Spooler
from tapio_publisher.window import Window

log = get_logger("tapio_publisher.publisher")  # one logger name for the publisher's lines, as before

ConfirmHook = Callable[[int, float], None]
YIELD_BYTES = 128 * 1024


class Sender:
    """Sends (or spools) what the publisher took, and settles it: acks resolve receipts and count
    as published, retryable failures go to the spool, rejections are dropped and counted. A
    connection change is noticed at the next dispatch or monitor tick: going down moves the
    in-flight messages to the spool, coming back wakes its replay."""

    def __init__(
        self, settings: PublisherSettings, metrics: PublisherMetrics, on_confirm: ConfirmHook | None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.nc: Client | None = None
        self.window: Window | None = None
        self.receipts = Receipts()
        self.atomic = True  # off once the stream says it does not allow atomic batches
        self._on_confirm = on_confirm
        self._unyielded = 0
        self._was_up = False
        self._progress: anyio.Event | None = None  # exists while flush/close waits
        self.spooler = Spooler(
            settings, metrics,
            connected=self.connected, send=self.send, wants_ack=self.receipts.wanted,
            on_drop=self.drop, on_progress=self.notify,
        )  # fmt: skip

    async def attach(self, nc: Client) -> None:
        """Starts the ack window on a connected client."""
        self.nc = nc
        self.window = Window(nc, self.settings.max_inflight, self.on_ack, self.on_fail)
        await self.window.start()
        self._was_up = nc.is_connected
        self.spooler.wake_replay()

    def in_flight(self) -> int:
        return len(self.window) if self.window is not None else 0

    def connected(self) -> bool:
        nc = self.nc
        return nc is not None and self.window is not None and nc.is_connected

    def check_connection(self) -> bool:
        up = self.connected()
        if up != self._was_up:
            self._was_up = up
            if up:
                log.info("NATS reachable again", spooled_events=self.spooler.spool.pending_events)
                self.spooler.wake_replay()
            else:
                left = self.window.take_all() if self.window is not None else []
                log.warning("NATS unreachable: spooling", in_flight=len(left))
                self.spool_left(left, "disconnected")
        return up

    async def dispatch_all(self, outs: list[Outgoing]) -> None:
        """Sends (or spools) messages the publisher took: shielded, so a cancelled producer never
        loses what it handed over (the wait is bounded by ack_timeout or goes to the spool)."""
        if outs:
            with anyio.CancelScope(shield=True):
                for out in outs:
                    if self.spooler.active or not self.check_connection():
                        await self.spooler.put(out)
                    else:
                        await self.send(out)
                    # Give the client's flusher a turn every ~128 KiB or 128 messages, so messages
                    # leave and acks come back while producing (pipelining) without a write per message.
                    self._unyielded += len(out.payload) + 1024
                    if self._unyielded >= YIELD_BYTES:
                        self._unyielded = 0
                        await anyio.lowlevel.checkpoint()

    async def send(self, out: Outgoing) -> None:
        window = self.window
        assert window is not None
        if window.full:
            start = time.monotonic()
            await window.wait_room()
            self.metrics.backpressure.observe(time.monotonic() - start)
            if out.replay is None and (self.spooler.active or not self.check_connection()):
                await self.spooler.put(out)
                return
        try:
            await window.send(out)
        except PublisherError as e:
            log.warning("publish failed; spooling", error=str(e))
            if out.replay is not None:
                raise
            self.spooler.put_nowait([out], "publish_error")

    async def send_atomic(self, outs: list[Outgoing], batch_id: str) -> Receipt | None:
        """Sends `outs` as one atomic batch; its commit's receipt, or None when it is better sent one
        by one (a single message, atomic batches refused by the stream, NATS down, spooling)."""
        window, nc = self.window, self.nc
        if len(outs) < 2 or not self.atomic or self.spooler.active or not self.check_connection():
            return None
        assert window is not None
        assert nc is not None
        return await atomic.send_batch(nc, window, self.receipts, outs, batch_id)

    def spool_left(self, left: list[Outgoing], reason: str) -> None:
        """Messages taken out of the window to the spool; an atomic batch's commit fails its receipt
        instead (its messages are then published one by one)."""
        error = PublisherError(f"atomic batch unconfirmed ({reason})")
        for out in left:
            if out.atomic:
                self.receipts.fail(out.msg_id, error)
        self.spooler.put_nowait([out for out in left if not out.atomic], reason)

    def expire(self) -> None:
        """Messages unacknowledged for longer than ack_timeout fail as retryable (to the spool)."""
        if self.window is not None:
            timeout = self.settings.ack_timeout
            for out in self.window.expired(time.monotonic(), timeout):
                self.on_fail(out, Failure("timeout", f"no ack within {timeout}s", True))

    def on_ack(self, out: Outgoing, ack: Ack) -> None:
        self.metrics.published_pending += out.events
        latency = time.monotonic() - out.sent_at
        self.metrics.ack_latency.observe(latency)
        if self._on_confirm is not None:
            self._on_confirm(out.events, latency)
        if out.replay is not None:
            out.replay.resolved(True)
        if out.want_ack:
            self.receipts.resolve(out.msg_id, ack)
        self.notify()

    def on_fail(self, out: Outgoing, failure: Failure) -> None:
        if out.atomic:  # the batch goes again one message at a time (AtomicReceipt.wait)
            if self.atomic and atomic.refused_as_disabled(failure.detail):
                self.atomic = False
                log.warning("the stream does not allow atomic batches: publishing one by one",
                            subject=out.subject, detail=failure.detail)  # fmt: skip
            self.receipts.fail(out.msg_id, PublisherError(f"atomic batch {failure.reason}: {failure.detail}"))
        elif failure.retryable:
            self.spooler.put_nowait([out], failure.reason)
        else:
            self.metrics.error(failure.reason)
            self.drop(out, "rejected", failure.detail)
            if out.replay is not None:
                out.replay.resolved(True)  # never retried: move past it
        self.notify()

    def drop(self, out: Outgoing, reason: str, detail: str) -> None:
        self.metrics.drop(reason, out.events)
        log.error("message dropped", reason=reason, subject=out.subject, msg_id=out.msg_id, detail=detail)
        error = PublishRejectedError(f"message {out.msg_id} dropped ({reason}): {detail}")
        self.receipts.fail(out.msg_id, error)

    def notify(self) -> None:
        if self._progress is not None:
            self._progress.set()
            self._progress = None

    async def wait_progress(self) -> None:
        """Returns at the next ack, failure or spool progress, or after one tick."""
        if self._progress is None:
            self._progress = anyio.Event()
        with anyio.move_on_after(self.settings.tick):
            await self._progress.wait()
