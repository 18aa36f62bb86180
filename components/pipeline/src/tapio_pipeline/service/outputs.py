"""The output messages of one routed input message: framed as EventBatches, compressed off the
event loop's thread.

Fed by the processor with what routing made of a message (event bytes by output subject). Framing
(`frame`) runs on the event loop: each subject's events become EventBatches under
MAX_OUTPUT_BYTES, whose `Nats-Msg-Id` (and `batch_id`) is derived from the input message's stream
and sequence, so a redelivered message produces the same ids. Compression (`compress`) of a large
payload runs on a worker thread when the batch holds several messages: zstd and lz4 release the
GIL, so on a second core it runs beside the framing and publishing of the neighbouring messages
instead of between them. One compression at a time (one compression context, the limiter); small
payloads, and a message handled alone, are compressed inline (a thread hop costs more than they
do, and a lone message has nothing to overlap).
"""

from __future__ import annotations

import anyio
import attrs

from tapio_pipeline.views import encode_batch
from tapio_publisher.codec import (
    COMPRESSION_HEADER,
    ENCODING_BATCH,
    ENCODING_HEADER,
    Compression,
    Compressor,
)

MAX_OUTPUT_BYTES = 512 * 1024  # one output message at most (TAPIO_PROCESSED takes 1 MB)
THREAD_BYTES = 32 * 1024  # payloads at least this large are compressed on the worker thread


@attrs.frozen
class Output:
    """One message to publish: the events of one subject (a part of them when they are many)."""

    subject: str
    msg_id: str
    payload: bytes
    count: int  # events in it


class Outputs:
    """Frames and compresses output messages (one per processor)."""

    def __init__(self, compression: Compression, *, thread_bytes: int = THREAD_BYTES) -> None:
        self.compression = compression
        self.thread_bytes = thread_bytes
        self._compressor = Compressor(compression)
        self._limiter = anyio.CapacityLimiter(1)  # the compressor's context is used by one thread at a time
        self.headers = {ENCODING_HEADER: ENCODING_BATCH}
        if compression is not Compression.NONE:
            self.headers[COMPRESSION_HEADER] = compression.value

    def frame(self, stream: str, stream_seq: int, groups: dict[str, list[bytes]]) -> list[Output]:
        """The uncompressed EventBatches of one input message (stream, sequence)."""
        out = []
        for subject, datas in groups.items():
            for part, chunk in enumerate(chunks(datas)):
                msg_id = f"pipeline:{stream}:{stream_seq}:{subject}:{part}"
                out.append(Output(subject, msg_id, encode_batch(chunk, msg_id), len(chunk)))
        return out

    async def compress(self, outputs: list[Output], *, overlapped: bool = True) -> list[Output]:
        """The same messages compressed (as they are with compression none). Large ones go to the
        worker thread when `overlapped` (the caller has other work meanwhile: the neighbouring
        messages of a batch), the caller's task waiting (others run); else inline, since waking a
        thread for a lone message only adds its wake-up to the message's latency."""
        if self.compression is Compression.NONE:
            return outputs
        if not overlapped or sum(len(o.payload) for o in outputs) < self.thread_bytes:
            return self._compressed(outputs)
        async with self._limiter:  # held across the thread's run: the context is never shared
            return await anyio.to_thread.run_sync(self._compressed, outputs)

    def _compressed(self, outputs: list[Output]) -> list[Output]:
        compress = self._compressor.compress
        return [attrs.evolve(o, payload=compress(o.payload)) for o in outputs]


def chunks(datas: list[bytes]) -> list[list[bytes]]:
    """Splits serialized events into groups whose batch stays under MAX_OUTPUT_BYTES."""
    if sum(map(len, datas)) + 8 * len(datas) <= MAX_OUTPUT_BYTES:
        return [datas]
    out: list[list[bytes]] = [[]]
    size = 0
    for d in datas:
        if out[-1] and size + len(d) + 8 > MAX_OUTPUT_BYTES:
            out.append([])
            size = 0
        out[-1].append(d)
        size += len(d) + 8
    return out
