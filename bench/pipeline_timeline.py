"""A timeline of the pipeline's main thread, for `bench/pipeline.py --timeline`: where its wall time
goes while it runs (routing, publishing, waiting for acks, for the compression thread, for input).

Run as the pipeline process instead of `python -m tapio_pipeline` (same arguments): it wraps a few
methods of the consumer runtime and the processor with timers, then runs the pipeline's own
`main()`. Each timed span records its wall time, the main thread's CPU time (`time.thread_time`) and
its run-queue wait (`/proc/thread-self/schedstat`: runnable but not running, the machine's load), so
`idle = wall - cpu - runq` is the time the event loop slept in epoll with nothing to run. Spans are
exclusive along the consumer task (a span's children are subtracted from it): consumer loop
(waiting for the next message), gather, route (the Kind's decode), handler phase 1 (frame, compress,
publish) with its compression waits, ack wait (the receipts awaited after publishing), settle (the
runtime's acks). Spans are kept per task: with batches in flight (the handler in tasks of its own
beside the consumer loop) a handler span's wall overlaps the loop's spans, so only the totals and the
route span are exact then. SIGUSR1 appends the cumulative totals as one JSON line to the file named by
TAPIO_BENCH_TIMELINE; the bench sends it at the start and the end of a phase and prints the difference.
Nothing here is part of the product.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

CATEGORIES = ("loop", "gather", "route", "handler", "ack_wait", "settle")
OVERLAPPING = "compress_wait"  # awaited in a task beside the framing and publishing: not exclusive


def _schedstat() -> tuple[float, float]:
    """(on-CPU seconds, run-queue wait seconds) of the calling thread."""
    with open("/proc/thread-self/schedstat", "rb") as f:
        run, wait, _ = f.read().split()
    return int(run) / 1e9, int(wait) / 1e9


class Timeline:
    def __init__(self, path: str) -> None:
        self.path = path
        self.totals = {c: [0.0, 0.0, 0.0, 0] for c in (*CATEGORIES, OVERLAPPING)}  # wall, cpu, runq, count
        # open spans by task: [category, start triple, child triple]
        self.stacks: dict[int, list[list[Any]]] = {}
        self.main = threading.get_ident()
        self.started = self._now()

    @staticmethod
    def _now() -> tuple[float, float, float]:
        _, runq = _schedstat()
        return time.monotonic(), time.thread_time(), runq

    def _stack(self) -> list[list[Any]]:
        return self.stacks.setdefault(id(asyncio.current_task()), [])

    def enter(self, category: str) -> None:
        self._stack().append([category, self._now(), [0.0, 0.0, 0.0]])

    def leave(self) -> None:
        stack = self._stack()
        category, start, child = stack.pop()
        now = self._now()
        spent = [b - a for a, b in zip(start, now, strict=True)]
        total = self.totals[category]
        for i in range(3):
            total[i] += spent[i] - child[i]
        total[3] += 1
        if not stack:
            del self.stacks[id(asyncio.current_task())]
        else:
            parent = stack[-1][2]
            for i in range(3):
                parent[i] += spent[i]

    def dump(self, *_: Any) -> None:
        wall, cpu, runq = self._now()
        line = {
            "wall": wall - self.started[0],
            "cpu": cpu - self.started[1],
            "runq": runq - self.started[2],
            "spans": self.totals,
        }
        with open(self.path, "a") as f:
            f.write(json.dumps(line) + "\n")


def _timed(tl: Timeline, category: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() != tl.main:
            return await fn(*args, **kwargs)
        tl.enter(category)
        try:
            return await fn(*args, **kwargs)
        finally:
            tl.leave()

    return wrapper


def _overlapping(tl: Timeline, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = tl._now()
        try:
            return await fn(*args, **kwargs)
        finally:
            total = tl.totals[OVERLAPPING]
            for i, (a, b) in enumerate(zip(start, tl._now(), strict=True)):
                total[i] += b - a
            total[3] += 1

    return wrapper


def install(tl: Timeline) -> None:
    from tapio_jetstream.consumer import Consumer
    from tapio_pipeline.service import processor as processor_mod
    from tapio_pipeline.service.outputs import Outputs
    from tapio_publisher.receipts import Receipt

    consume = Consumer._consume

    async def timed_consume(self: Any, receive: Any, puller: Any) -> None:
        tl.enter("loop")
        try:
            await consume(self, receive, puller)
        finally:
            tl.leave()

    patches: list[tuple[Any, str, str]] = [
        (Consumer, "_gather", "gather"),
        (Consumer, "_finish", "settle"),
        (Consumer, "_flush_acks", "settle"),
        (Consumer, "_prepare", "route"),
        (processor_mod.Processor, "handle_batch", "handler"),
        (Receipt, "wait", "ack_wait"),
    ]
    setattr(Consumer, "_consume", timed_consume)  # noqa: B010 - patched for the bench only
    for owner, name, category in patches:
        setattr(owner, name, _timed(tl, category, getattr(owner, name)))
    setattr(Outputs, "compress", _overlapping(tl, Outputs.compress))  # noqa: B010


def main() -> None:
    tl = Timeline(os.environ["TAPIO_BENCH_TIMELINE"])
    install(tl)
    signal.signal(signal.SIGUSR1, tl.dump)
    from tapio_pipeline.cli import main as pipeline_main

    sys.argv[0] = "tapio-pipeline"
    sys.exit(pipeline_main())


if __name__ == "__main__":
    main()
