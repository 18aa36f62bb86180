"""Benchmark of the pipeline processor: `tapio-pipeline` as its own process on a local JetStream.

Events: the load generator's realistic mix of a 10,000-pod cluster (pod updates and churn, execs,
retransmits, unit and CNI samples, incidents), 1,000 events an EventBatch, ids made unique per
copy; zstd-compressed at the publisher's level as the collectors publish them (600 distinct batches
made once and published in turn, each with its own message id; --input-compression none: a fresh
uncompressed copy each time, the inputs of the figures before session 5). Rules: drop debug, sample execs 1 in 10, redact a key, route warnings and above to siem and
archive, the rest to archive (every event is learnt or enriched, decided, and published at least
once unless dropped).

1. Drain (capacity): N events are stored first, then the pipeline starts; drain_events_per_second
   is N over the time from its first ack to its last (consumer ack floor), start-up not counted.
2. Sustained: a producer publishes at a fixed rate for the remaining seconds while the pipeline
   runs: --rate (default 200,000 events/s), or 90 % of the drain rate when the drain was slower
   (the output says which); when that phase does not hold, a second one offers 90 % of what the
   first processed (the rate it holds). The latency of an input message is from the
   moment its publish is sent to the arrival of its last output message (output message ids carry
   the input's stream sequence); p99_ms is over the messages of the sustained phase. The phase
   held when at its end at most one second of events was still waiting.
events_per_second is the rate processed during the sustained phase (what p99_ms was measured at).
rss_mb and cpu are the pipeline process's (peak RSS; CPU microseconds per event of the sustained
phase, the figure least moved by a loaded machine; and that of its main thread alone, the event
loop that bounds one process: compression runs on a worker thread). The load average is printed
before and after.

Last line: events_per_second=N p99_ms=N rss_mb=N (then drain rate, offered rate, CPU, load).
    bazel run //bench:pipeline -- --seconds 20
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs
import psutil
from cpu_budget import CpuBudget
from nats.aio.msg import Msg

from tapio_common.config import NatsConfig
from tapio_common.nats.connect import connect
from tapio_common.nats.embedded import EmbeddedNats
from tapio_correlator_testing.loadgen import Mix, to_pb
from tapio_jetstream.streams import apply_layout
from tapio_publisher import PublisherSettings
from tapio_publisher.codec import (
    COMPRESSION_HEADER,
    ENCODING_BATCH,
    ENCODING_HEADER,
    MSG_ID_HEADER,
    Compression,
    Compressor,
)
from tapio_publisher.subjects import event_subject
from tapio_publisher.wire import batch_trailer, event_field, id_field

BATCH = 1_000
RULES = """\
destinations: [siem, archive]
default: [archive]
rules:
  - {name: no-debug, match: {severity: debug}, drop: true}
  - {name: execs, match: {source: ebpf, type: process_exec}, sample: 10}
  - {name: hide-tokens, match: {source: [ebpf, systemd]}, redact: [token]}
  - {name: security, match: {min_severity: warning}, route: [siem, archive]}
"""


def event_pool(count: int) -> list[tuple[str, bytes]]:
    """(subject, serialized event without its id) of the mix, in time order."""
    mix = Mix(10_000, seed=7)
    events = mix.setup() + mix.chunk(max(0, count - 10_000))
    out = []
    for ev in events[:count]:
        pb = to_pb(ev)
        subject = event_subject(pb)
        pb.ClearField("id")
        out.append((subject, pb.SerializeToString()))
    return out


MARK = b"@@@@@@@@"  # where a template batch holds the batch number of its event ids
# Compressed input: batches made and compressed once, then published in turn (each with a message
# id of its own). Their event ids come again after this many batches, far beyond the consumer's
# dedup window (100,000 ids), so none is taken for a duplicate.
COMPRESSED_BATCHES = 600


class Batches:
    """EventBatch payloads of the pool, one subject class a batch (k8s, ebpf, systemd, cni) in the
    mix's proportions, each event with a fresh id (the pipeline deduplicates by event id). The
    batches are made once as templates whose ids hold MARK; a batch is a template with MARK
    replaced by its number (same length: the framing stays valid), so the producer costs little
    CPU beside the pipeline."""

    def __init__(self, pool: list[tuple[str, bytes]], compression: str = "none") -> None:
        by_class: dict[str, list[bytes]] = {}
        for subject, data in pool:
            by_class.setdefault(subject.split(".")[2], []).append(data)
        groups = [(f"tapio.events.{cls}.bench.batch", datas) for cls, datas in sorted(by_class.items())]
        self.templates: list[tuple[str, bytes, int]] = []
        sent = [0] * len(groups)
        total = sum(len(d) for _, d in groups)
        while sum(sent) < total:  # each class in its share of the pool, in turn
            gi = min(range(len(groups)), key=lambda i: sent[i] / len(groups[i][1]))
            subject, datas = groups[gi]
            chunk = datas[sent[gi] : sent[gi] + BATCH]
            sent[gi] += len(chunk)
            ids = (id_field(f"b{MARK.decode()}-{i:04d}") for i in range(len(chunk)))
            payload = b"".join(event_field(i + d) for i, d in zip(ids, chunk, strict=True))
            self.templates.append((subject, payload, len(chunk)))
        self.n = 0
        self.headers = {ENCODING_HEADER: ENCODING_BATCH}
        self.compressed: list[tuple[str, bytes, int]] = []
        if compression != "none":  # as the collectors publish: zstd at the publisher's level
            self.headers[COMPRESSION_HEADER] = compression
            level = attrs.fields(PublisherSettings).compression_level.default
            assert isinstance(level, int)
            codec = Compressor(Compression.parse(compression), level)
            for n in range(COMPRESSED_BATCHES):
                subject, payload, _, count = self._make(n)
                self.compressed.append((subject, codec.compress(payload), count))

    def _make(self, n: int) -> tuple[str, bytes, str, int]:
        subject, template, count = self.templates[n % len(self.templates)]
        batch_id = f"bench-{n}"
        return subject, template.replace(MARK, b"%08d" % n) + batch_trailer(batch_id), batch_id, count

    def next(self) -> tuple[str, bytes, str, int]:
        """The next batch: subject, payload, batch id (its message id: unique), events."""
        self.n += 1
        if not self.compressed:
            return self._make(self.n)
        subject, payload, count = self.compressed[self.n % len(self.compressed)]
        return subject, payload, f"bench-{self.n}", count


class PipelineProcess:
    def __init__(
        self, url: str, work: Path, profile: str = "", timeline: bool = False, extra: Sequence[str] = ()
    ) -> None:
        rules = work / "rules.yaml"
        rules.write_text(RULES)
        python = [sys.executable, "-m", "cProfile", "-o", profile] if profile else [sys.executable]
        entry = (
            [str(Path(__file__).with_name("pipeline_timeline.py"))] if timeline else ["-m", "tapio_pipeline"]
        )
        args = [*python, *entry, "--nats-url", url, "--rules", str(rules),
                "--metrics-port", "0", "--data-dir", str(work / "data"), "--log-level", "warning", *extra]  # fmt: skip
        self.log = (work / "pipeline.log").open("wb")
        env = dict(os.environ)
        self.timeline = work / "timeline.jsonl" if timeline else None
        if self.timeline is not None:
            env["TAPIO_BENCH_TIMELINE"] = str(self.timeline)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.ps = psutil.Process(self.proc.pid)
        self.peak_rss = 0

    def sample(self) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):  # it ended: its peak is already counted
            self.peak_rss = max(self.peak_rss, self.ps.memory_info().rss)

    def cpu_seconds(self) -> float:
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """User and system CPU seconds of the pipeline process so far."""
        t = self.ps.cpu_times()
        return float(t.user), float(t.system)

    def main_thread_seconds(self) -> float:
        """CPU seconds of the process's main thread (the event loop: what one process is bound by;
        the rest is the compression worker thread)."""
        with contextlib.suppress(psutil.NoSuchProcess):
            for t in self.ps.threads():
                if t.id == self.proc.pid:
                    return float(t.user_time + t.system_time)
        return 0.0

    def mark(self) -> dict[str, Any] | None:
        """With --timeline: the main thread's cumulative timeline now (see bench/pipeline_timeline.py)."""
        if self.timeline is None:
            return None
        lines = len(self.timeline.read_text().splitlines()) if self.timeline.exists() else 0
        self.proc.send_signal(signal.SIGUSR1)
        for _ in range(200):
            if self.timeline.exists() and len(text := self.timeline.read_text().splitlines()) > lines:
                return dict(json.loads(text[-1]))
            time.sleep(0.01)
        return None

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


async def drain_phase(
    url: str, batches: Batches, total: int, work: Path, profile: str, timeline: bool, extra: Sequence[str]
) -> tuple[float, PipelineProcess]:
    nc = await connect(NatsConfig(), "bench", urls=(url,))
    js = nc.jetstream()
    sent = 0
    while sent < total:
        subject, payload, batch_id, count = batches.next()
        await js.publish(subject, payload, headers={**batches.headers, MSG_ID_HEADER: batch_id})
        sent += count
    last = (await js.stream_info("TAPIO_EVENTS")).state.last_seq
    print(f"drain: {sent:,} events in {last:,} messages stored; starting the pipeline", flush=True)
    proc = PipelineProcess(url, work, profile, timeline, extra)
    try:
        first_ack = None
        mark_first = None
        cpu_first = (0.0, 0.0)
        main_first = 0.0
        while True:
            proc.sample()
            try:
                info = await js.consumer_info("TAPIO_EVENTS", "pipeline")
            except Exception:  # noqa: BLE001 (the pipeline creates its consumer when it starts)
                info = None
            now = time.monotonic()
            if info is not None and info.ack_floor.stream_seq > 0 and first_ack is None:
                first_ack = (now, info.ack_floor.stream_seq)
                cpu_first = proc.cpu_split()
                main_first = proc.main_thread_seconds()
                mark_first = proc.mark()
            if info is not None and info.ack_floor.stream_seq >= last:
                break
            if proc.proc.poll() is not None:
                raise SystemExit(f"pipeline exited: {(work / 'pipeline.log').read_text()[-2000:]}")
            await anyio.sleep(0.05)
        assert first_ack is not None
        seconds = max(1e-6, now - first_ack[0])
        events = max(1.0, sent * (last - first_ack[1]) / last)  # those of the messages acked after the first
        rate = events / seconds
        user, system = (b - a for a, b in zip(cpu_first, proc.cpu_split(), strict=True))
        main = proc.main_thread_seconds() - main_first
        print(
            f"drain: {events:,.0f} events in {seconds:.2f}s -> {rate:,.0f} events/s; pipeline CPU "
            f"{(user + system) / events * 1e6:.2f} us/event (user {user / events * 1e6:.2f}, "
            f"system {system / events * 1e6:.2f}; main thread {main / events * 1e6:.2f}), "
            f"{(user + system) / seconds:.0%} of a core",
            flush=True,
        )
        _print_timeline("drain", mark_first, proc.mark(), events)
    except BaseException:
        proc.stop()  # not left running when the drain fails
        raise
    await nc.close()
    return rate, proc


async def steady_phase(
    url: str, batches: Batches, rate: float, seconds: float, proc: PipelineProcess
) -> tuple[float, float, float, int]:
    """Offered rate, processed rate, p99 latency (s) and events still waiting at the end."""
    nc = await connect(NatsConfig(), "bench-steady", urls=(url,))
    js = nc.jetstream()
    published: dict[int, float] = {}  # input stream seq -> when its publish was sent
    sizes: dict[int, int] = {}
    last_output: dict[int, float] = {}  # input stream seq -> arrival of its last output so far

    async def on_output(msg: Msg) -> None:
        seq = int((msg.headers or {}).get(MSG_ID_HEADER, "::0").split(":")[2])
        last_output[seq] = time.monotonic()

    sub = await nc.subscribe("tapio.processed.>", cb=on_output, pending_msgs_limit=1_000_000)
    start = time.monotonic()
    offered = 0
    mark_start = proc.mark()
    while time.monotonic() - start < seconds:
        subject, payload, batch_id, count = batches.next()
        t = time.monotonic()
        ack = await js.publish(subject, payload, headers={**batches.headers, MSG_ID_HEADER: batch_id})
        published[ack.seq] = t
        sizes[ack.seq] = count
        offered += count
        proc.sample()
        delay = start + offered / rate - time.monotonic()
        if delay > 0:
            await anyio.sleep(delay)
    elapsed = time.monotonic() - start
    _print_timeline("sustained", mark_start, proc.mark(), offered)
    last = max(published)
    info = await js.consumer_info("TAPIO_EVENTS", "pipeline")
    waiting = sum(n for seq, n in sizes.items() if seq > info.ack_floor.stream_seq)
    done = sum(n for seq, n in sizes.items() if seq <= info.ack_floor.stream_seq)
    with anyio.move_on_after(30):  # the tail: every message's outputs, for its latency
        while (await js.consumer_info("TAPIO_EVENTS", "pipeline")).ack_floor.stream_seq < last:  # noqa: ASYNC110 - polling the server
            await anyio.sleep(0.1)
    await anyio.sleep(0.5)  # outputs published before the ack are delivered by now
    await sub.unsubscribe()
    await nc.close()
    latencies = sorted(last_output[s] - t for s, t in published.items() if s in last_output)
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else float("inf")
    return offered / elapsed, done / elapsed, p99, waiting


async def main_async(args: argparse.Namespace) -> None:
    print(f"load average at start: {_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tapio-bench-pipeline-") as tmp:
        work = Path(tmp)
        server = EmbeddedNats(work / "js", server_name="bench").start()
        try:
            nc = await connect(NatsConfig(), "bench-setup", urls=(server.url,))
            await apply_layout(nc.jetstream(), 1)
            await nc.close()
            print(f"generating the event mix ({args.pool:,} events of a 10,000-pod cluster)...", flush=True)
            batches = Batches(event_pool(args.pool), args.input_compression)
            print(f"input batches: {args.input_compression}", flush=True)
            drained, proc = await drain_phase(
                server.url,
                batches,
                int(args.drain_events),
                work,
                args.profile,
                args.timeline,
                args.pipeline_arg,
            )
            steady_seconds = max(2.0, args.seconds / 2)
            rate = args.rate if drained >= args.rate else 0.9 * drained
            why = "the target" if rate == args.rate else "90% of the drain rate, below the target"
            try:
                for attempt in (1, 2):  # a second try at 90% of what the first processed
                    print(
                        f"sustained: offering {rate:,.0f} events/s ({why}) for {steady_seconds:.0f}s",
                        flush=True,
                    )
                    cpu_start = proc.cpu_seconds()
                    main_start = proc.main_thread_seconds()
                    assert server.proc is not None
                    budget = CpuBudget(
                        {"pipeline": proc.ps, "nats-server": server.proc.pid, "producer": os.getpid()}
                    )
                    budget.start()
                    offered, processed, p99, waiting = await steady_phase(
                        server.url, batches, rate, steady_seconds, proc
                    )
                    budget.stop()
                    events = max(1.0, offered * steady_seconds)
                    cpu_us = (proc.cpu_seconds() - cpu_start) / events * 1e6
                    main_us = (proc.main_thread_seconds() - main_start) / events * 1e6
                    _print_budget(budget, int(events), main_us)
                    held = "yes" if waiting <= offered else "no"
                    print(
                        f"sustained: {offered:,.0f} events/s offered, {processed:,.0f} events/s processed, "
                        f"p99 publish->last output {p99 * 1000:.0f} ms, {waiting:,} events waiting at the "
                        f"end (held: {held}), pipeline CPU {cpu_us:.2f} us/event (main thread {main_us:.2f})",
                        flush=True,
                    )
                    if held == "yes" or attempt == 2:
                        break
                    rate, why = 0.9 * processed, "90% of what the previous phase processed"
            finally:
                proc.sample()
                proc.stop()
            rss = proc.peak_rss // (1024 * 1024)
            print(f"load average at the end: {_load()}")
            print(
                f"events_per_second={processed:.0f} p99_ms={p99 * 1000:.0f} rss_mb={rss} "
                f"drain_events_per_second={drained:.0f} offered_events_per_second={offered:.0f} held={held} "
                f"cpu_us_per_event={cpu_us:.2f} main_thread_us_per_event={main_us:.2f} "
                f"load1={os.getloadavg()[0]:.1f}"
            )
        finally:
            server.stop()


def _print_budget(budget: CpuBudget, events: int, main_us: float) -> None:
    """Each process's CPU per event, their total and the rates that allows on this machine."""
    per = budget.per_unit_us(events)
    total = budget.total_us(events)
    cores = os.cpu_count() or 1
    print(
        "sustained: CPU per event "
        + ", ".join(f"{name} {us:.2f} us" for name, us in per.items())
        + f"; total {total:.2f} us: {cores} cores hold at most {cores * 1e6 / max(total, 1e-9):,.0f} "
        f"events/s at that cost, the pipeline's main thread {1e6 / max(main_us, 1e-9):,.0f}",
        flush=True,
    )


def _print_timeline(
    phase: str, before: dict[str, Any] | None, after: dict[str, Any] | None, events: float
) -> None:
    """The main thread's wall time between two marks, by span: share of the wall time, CPU us per
    event, run-queue wait (the machine's load) and idle (the event loop asleep: nothing to run)."""
    if before is None or after is None:
        return
    wall = after["wall"] - before["wall"]
    cpu = after["cpu"] - before["cpu"]
    runq = after["runq"] - before["runq"]
    print(
        f"{phase} timeline (main thread, {wall:.2f}s): CPU {cpu / wall:.0%} ({cpu / events * 1e6:.2f} us/event), "
        f"run queue {runq / wall:.0%}, idle {(wall - cpu - runq) / wall:.0%}",
        flush=True,
    )
    for name, now in after["spans"].items():
        then = before["spans"][name]
        w, c, r, n = (b - a for a, b in zip(then, now, strict=True))
        if n == 0 and w <= 0:
            continue
        overlap = " (overlapping the framing and publishing)" if name == "compress_wait" else ""
        print(
            f"  {name:<14} wall {w / wall:6.1%}  cpu {c / events * 1e6:5.2f} us/event  runq {r / wall:6.1%}  "
            f"idle {(w - c - r) / wall:6.1%}  spans {n:,}{overlap}",
            flush=True,
        )


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg()) + f" ({os.cpu_count()} cpus)"


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="bench-pipeline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="twice the length of the sustained phase (default 20)"
    )
    parser.add_argument(
        "--drain-events",
        type=int,
        default=1_000_000,
        help="events stored before the drain (default 1,000,000)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=200_000.0,
        help="events/s offered in the sustained phase when the drain was as fast (default 200,000)",
    )
    parser.add_argument(
        "--pool", type=int, default=200_000, help="distinct events of the mix to draw batches from"
    )
    parser.add_argument(
        "--input-compression",
        choices=("zstd", "lz4", "none"),
        default="zstd",
        help="compression of the input batches: zstd (the default) at the publisher's level, as the "
        "collectors publish them; none for the figures of session 4 and before",
    )
    parser.add_argument(
        "--pipeline-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an argument for tapio-pipeline (repeat), e.g. --pipeline-arg=--batches-in-flight=1",
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="print where the pipeline's main thread spends each phase (bench/pipeline_timeline.py)",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        default="",
        help="run the pipeline under cProfile, statistics to FILE (python -m pstats FILE)",
    )
    args = parser.parse_args()
    anyio.run(main_async, args)


if __name__ == "__main__":
    main()
