"""Atomic batch publishing (JetStream 2.12+, a stream with `allow_atomic`): several messages stored
all or none, confirmed by ONE publish ack (ADR-50). Fed by `Publisher.publish_atomic`.

Every message of a batch carries `Nats-Batch-Id` and `Nats-Batch-Sequence` (1, 2, ...); the last
one also `Nats-Batch-Commit: 1` and the only reply subject: the server answers it with one ack
(`"batch"`, `"count"`, the last sequence) or one error for the whole batch. Limits of the server
(`jetstream.limits.batch`): at most 1000 messages a batch, 50 batches in flight a stream, a batch
left incomplete for 10 s is abandoned. `Nats-Msg-Id` is checked inside a batch, but a duplicate id
refuses the WHOLE batch (err_code 10201), so a batch that fails for any reason (that one, a stream
without allow_atomic, a timeout, NATS down) is published again one message at a time, where each
duplicate is dropped on its own: `AtomicReceipt.wait()` returns once every message is stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import anyio
import attrs
from nats.aio.client import Client
from nats.errors import Error as NatsError

from tapio_common.logging import get_logger
from tapio_publisher.errors import PublisherError
from tapio_publisher.message import Outgoing
from tapio_publisher.receipts import Receipt, Receipts
from tapio_publisher.window import Window

log = get_logger(__name__)

BATCH_ID_HEADER = "Nats-Batch-Id"
BATCH_SEQUENCE_HEADER = "Nats-Batch-Sequence"
BATCH_COMMIT_HEADER = "Nats-Batch-Commit"
MAX_MESSAGES = 1000  # the server's default jetstream.limits.batch.max_msgs
DISABLED_ERR_CODE = 10174  # "atomic publish is disabled" (the stream lacks allow_atomic)
DUPLICATE_ERR_CODE = 10201  # "atomic publish batch contains duplicate message id"


def batch_parts(outs: Sequence[Outgoing], batch_id: str) -> tuple[list[Outgoing], Outgoing]:
    """The messages of one atomic batch: those sent without a reply, and the commit (which waits for
    the batch's ack, under the receipt id `atomic:<batch id>`). `outs` are left as they are."""
    lead = [
        Outgoing(o.subject, o.payload, {**o.headers, BATCH_ID_HEADER: batch_id, BATCH_SEQUENCE_HEADER: str(n)},
                 o.msg_id, 1)
        for n, o in enumerate(outs[:-1], 1)
    ]  # fmt: skip
    last = outs[-1]
    commit_headers = {**last.headers, BATCH_ID_HEADER: batch_id, BATCH_SEQUENCE_HEADER: str(len(outs)),
                      BATCH_COMMIT_HEADER: "1"}  # fmt: skip
    commit = Outgoing(last.subject, last.payload, commit_headers, f"atomic:{batch_id}", len(outs),
                      want_ack=True, atomic=True)  # fmt: skip
    return lead, commit


async def send_batch(
    nc: Client, window: Window, receipts: Receipts, outs: Sequence[Outgoing], batch_id: str
) -> Receipt:
    """Publishes `outs` as one atomic batch: the commit in the publisher's in-flight window (its ack,
    timeout and failure handled there), the others before it without a reply. Shielded: a cancelled
    caller never leaves half a batch (the server would abandon it after 10 s)."""
    lead, commit = batch_parts(outs, batch_id)
    with anyio.CancelScope(shield=True):
        if window.full:
            await window.wait_room()
        receipt = receipts.add(commit.msg_id)
        try:
            for out in lead:
                await nc.publish(out.subject, out.payload, headers=out.headers)
            await window.send(commit)
        except (NatsError, OSError, PublisherError) as e:
            receipts.fail(commit.msg_id, PublisherError(f"atomic batch not sent: {e}"))
    return receipt


def refused_as_disabled(detail: str) -> bool:
    """The failure says the stream does not allow atomic batches (publish one by one from now on)."""
    return f"err_code {DISABLED_ERR_CODE}" in detail


OneByOne = Callable[[list[Outgoing]], Awaitable[list[Receipt]]]


@attrs.define
class _Chunk:
    outs: list[Outgoing]  # the messages as the caller gave them (no batch headers)
    commit: Receipt | None  # the atomic batch's ack; None: sent one by one
    singles: list[Receipt]


class AtomicReceipt:
    """The confirmation of every message handed to `Publisher.publish_atomic`."""

    def __init__(self, one_by_one: OneByOne) -> None:
        self._one_by_one = one_by_one
        self._chunks: list[_Chunk] = []
        self.fallbacks = 0  # batches that had to go one message at a time

    def add(self, outs: list[Outgoing], commit: Receipt | None, singles: list[Receipt]) -> None:
        self._chunks.append(_Chunk(outs, commit, singles))

    async def wait(self) -> list[int]:
        """Returns once every message is stored (a failed batch is published again one by one), with
        the stream sequence of each message in the order given (a duplicate: the sequence stored
        before; 0 where the server did not say); raises the publisher's error if one of them was
        dropped. Waiting again is fine."""
        seqs: list[int] = []
        for chunk in self._chunks:
            if chunk.commit is not None:
                try:
                    last = (await chunk.commit.wait()).seq  # a batch is stored as consecutive sequences
                    n = len(chunk.outs)
                    seqs.extend(range(last - n + 1, last + 1) if last >= n else [0] * n)
                    continue
                except PublisherError as e:
                    log.info("atomic batch not stored, publishing its messages one by one",
                             messages=len(chunk.outs), error=str(e))  # fmt: skip
                    singles = await self._one_by_one(chunk.outs)
                    chunk.commit, chunk.singles = None, singles  # only once they are handed over
                    self.fallbacks += 1
            for receipt in chunk.singles:
                seqs.append((await receipt.wait()).seq)
        return seqs
