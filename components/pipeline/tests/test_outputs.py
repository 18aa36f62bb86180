"""Output messages: framed with ids from the input message, split under the size limit, compressed
on the worker thread (large) or inline (small) to the same bytes the consumers decode."""

from __future__ import annotations

import anyio
import pytest

from tapio.events.v1 import events_pb2
from tapio_jetstream import decode_batch
from tapio_pipeline.service.outputs import MAX_OUTPUT_BYTES, Outputs, chunks
from tapio_publisher.codec import Compression


def events(n: int, size: int = 100) -> list[bytes]:
    return [
        events_pb2.Event(id=f"e-{i}", type="oom_kill", message="x" * size).SerializeToString()
        for i in range(n)
    ]


def test_chunks_keep_every_event_in_order_under_the_limit() -> None:
    datas = events(3_000, 400)
    parts = chunks(datas)
    assert len(parts) > 1
    assert [d for part in parts for d in part] == datas
    assert all(sum(len(d) + 8 for d in part) <= MAX_OUTPUT_BYTES for part in parts)
    assert chunks(datas[:10]) == [datas[:10]]


@pytest.mark.parametrize("compression", list(Compression))
@pytest.mark.parametrize("thread_bytes", [0, 1 << 30])  # always on the worker thread / never
def test_outputs_decode_to_the_events_with_ids_of_the_input_message(
    compression: Compression, thread_bytes: int
) -> None:
    outputs = Outputs(compression, thread_bytes=thread_bytes)
    groups = {"tapio.processed.ebpf.siem": events(5), "tapio.processed.ebpf.archive": events(3_000, 400)}
    framed = outputs.frame("TAPIO_EVENTS", 42, groups)
    done = anyio.run(outputs.compress, framed)
    assert [(o.subject, o.msg_id, o.count) for o in done] == [(o.subject, o.msg_id, o.count) for o in framed]
    ids = [o.msg_id for o in done]
    assert ids[0] == "pipeline:TAPIO_EVENTS:42:tapio.processed.ebpf.siem:0"
    assert ids[1:] == [
        f"pipeline:TAPIO_EVENTS:42:tapio.processed.ebpf.archive:{i}" for i in range(len(ids) - 1)
    ]
    for subject, datas in groups.items():
        got = []
        for o in done:
            if o.subject == subject:
                batch = decode_batch(outputs.headers, o.payload)
                assert batch.batch_id == o.msg_id
                got += [e.SerializeToString() for e in batch.events]
        assert got == datas
    if compression is not Compression.NONE:
        assert sum(len(o.payload) for o in done) < sum(len(o.payload) for o in framed)


def test_compressions_on_the_worker_thread_one_at_a_time_keep_their_order() -> None:
    outputs = Outputs(Compression.ZSTD, thread_bytes=0)
    batches = [outputs.frame("S", seq, {"tapio.processed.k8s.archive": events(200, 50)}) for seq in range(20)]

    async def main() -> list[list[str]]:
        results: dict[int, list[str]] = {}

        async def one(i: int) -> None:
            done = await outputs.compress(batches[i])
            results[i] = [decode_batch(outputs.headers, o.payload).batch_id for o in done]

        async with anyio.create_task_group() as tg:
            for i in range(len(batches)):
                tg.start_soon(one, i)
        return [results[i] for i in range(len(batches))]

    assert anyio.run(main) == [[f"pipeline:S:{seq}:tapio.processed.k8s.archive:0"] for seq in range(20)]
