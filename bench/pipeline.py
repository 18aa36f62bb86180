"""Benchmark of the pipeline processor: `tapio-pipeline` as its own process on a local JetStream.

Events: the load generator's realistic mix of a 10,000-pod cluster (pod updates and churn, execs,
retransmits, unit and CNI samples, incidents), 1,000 events an EventBatch, ids made unique per
copy. Rules: drop debug, sample execs 1 in 10, redact a key, route warnings and above to siem and
archive, the rest to archive (every event is enriched, decided and published at least once).

1. Drain: N events are stored first, then the pipeline starts; events_per_second is N over the
   time from its first ack to its last (consumer ack floor), so start-up is not counted.
2. Steady: a producer publishes at --rate events/s for the remaining seconds while the pipeline
   runs; the latency of a batch is from its publish to the arrival of its first output message
   (output message ids carry the input's stream sequence); p99_ms is over those batches.
rss_mb and cpu_percent are the pipeline process's (peak RSS; CPU over the whole run).

Last line: events_per_second=N p99_ms=N rss_mb=N (plus the steady phase's rate and lag).
    bazel run //bench:pipeline -- --seconds 20
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import psutil
from nats.aio.msg import Msg

from tapio_common.config import NatsConfig
from tapio_common.nats.connect import connect
from tapio_common.nats.embedded import EmbeddedNats
from tapio_correlator_testing.loadgen import Mix, to_pb
from tapio_jetstream.streams import apply_layout
from tapio_publisher.codec import ENCODING_BATCH, ENCODING_HEADER, MSG_ID_HEADER
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


class Batches:
    """EventBatch payloads of the pool, one subject class a batch (k8s, ebpf, systemd, cni) in the
    mix's proportions, each event with a fresh id (the pipeline deduplicates by event id)."""

    def __init__(self, pool: list[tuple[str, bytes]]) -> None:
        by_class: dict[str, list[bytes]] = {}
        for subject, data in pool:
            by_class.setdefault(subject.split(".")[2], []).append(data)
        self.groups = [(f"tapio.events.{cls}.bench.batch", datas) for cls, datas in sorted(by_class.items())]
        self.sent = [0] * len(self.groups)  # events sent per class
        self.n = 0

    def next(self) -> tuple[str, bytes, str, int]:
        """The next batch: of the class furthest behind its share of the pool."""
        self.n += 1
        gi = min(range(len(self.groups)), key=lambda i: self.sent[i] / len(self.groups[i][1]))
        subject, datas = self.groups[gi]
        start = self.sent[gi] % len(datas)
        chunk = (
            (datas[start:] + datas[:start])[:BATCH]
            if start + BATCH > len(datas)
            else datas[start : start + BATCH]
        )
        self.sent[gi] += len(chunk)
        batch_id = f"bench-{self.n}"
        payload = b"".join(event_field(id_field(f"b{self.n}-{i}") + d) for i, d in enumerate(chunk))
        return subject, payload + batch_trailer(batch_id), batch_id, len(chunk)


class PipelineProcess:
    def __init__(self, url: str, work: Path) -> None:
        rules = work / "rules.yaml"
        rules.write_text(RULES)
        args = [sys.executable, "-m", "tapio_pipeline", "--nats-url", url, "--rules", str(rules),
                "--metrics-port", "0", "--data-dir", str(work / "data"), "--log-level", "warning"]  # fmt: skip
        self.log = (work / "pipeline.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=dict(os.environ))
        self.ps = psutil.Process(self.proc.pid)
        self.peak_rss = 0

    def sample(self) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):  # it ended: its peak is already counted
            self.peak_rss = max(self.peak_rss, self.ps.memory_info().rss)

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


async def drain_phase(url: str, batches: Batches, total: int, work: Path) -> tuple[float, PipelineProcess]:
    nc = await connect(NatsConfig(), "bench", urls=(url,))
    js = nc.jetstream()
    sent = 0
    while sent < total:
        subject, payload, batch_id, count = batches.next()
        await js.publish(subject, payload, headers={ENCODING_HEADER: ENCODING_BATCH, MSG_ID_HEADER: batch_id})
        sent += count
    last = (await js.stream_info("TAPIO_EVENTS")).state.last_seq
    print(f"drain: {sent:,} events in {last:,} messages stored; starting the pipeline", flush=True)
    proc = PipelineProcess(url, work)
    first_ack = None
    while True:
        proc.sample()
        try:
            info = await js.consumer_info("TAPIO_EVENTS", "pipeline")
        except Exception:  # noqa: BLE001 (the pipeline creates its consumer when it starts)
            info = None
        now = time.monotonic()
        if info is not None and info.ack_floor.stream_seq > 0 and first_ack is None:
            first_ack = (now, info.ack_floor.stream_seq)
        if info is not None and info.ack_floor.stream_seq >= last:
            break
        if proc.proc.poll() is not None:
            raise SystemExit(f"pipeline exited: {(work / 'pipeline.log').read_text()[-2000:]}")
        await anyio.sleep(0.05)
    assert first_ack is not None
    seconds = max(1e-6, now - first_ack[0])
    events = sent * (last - first_ack[1]) / last  # the events of the messages acked after the first ack
    rate = events / seconds
    print(f"drain: {events:,.0f} events in {seconds:.2f}s -> {rate:,.0f} events/s", flush=True)
    await nc.close()
    return rate, proc


async def steady_phase(
    url: str, batches: Batches, rate: float, seconds: float, proc: PipelineProcess
) -> tuple[float, float, int]:
    nc = await connect(NatsConfig(), "bench-steady", urls=(url,))
    js = nc.jetstream()
    published: dict[int, float] = {}
    latencies: list[float] = []
    seen: set[int] = set()
    finished = [False]
    all_seen = anyio.Event()

    async def on_output(msg: Msg) -> None:
        seq = int((msg.headers or {}).get(MSG_ID_HEADER, "::0").split(":")[2])
        if seq in published and seq not in seen:
            seen.add(seq)
            latencies.append(time.monotonic() - published[seq])
        if finished[0] and len(seen) >= len(published):
            all_seen.set()

    sub = await nc.subscribe("tapio.processed.>", cb=on_output)
    start = time.monotonic()
    n = 0
    offered = 0
    while time.monotonic() - start < seconds:
        subject, payload, batch_id, count = batches.next()
        offered += count
        t = time.monotonic()
        ack = await js.publish(
            subject, payload, headers={ENCODING_HEADER: ENCODING_BATCH, MSG_ID_HEADER: batch_id}
        )
        published[ack.seq] = t
        n += 1
        proc.sample()
        delay = start + offered / rate - time.monotonic()
        if delay > 0:
            await anyio.sleep(delay)
    elapsed = time.monotonic() - start
    finished[0] = True
    if len(seen) >= len(published):
        all_seen.set()
    with anyio.move_on_after(10):
        await all_seen.wait()
    await sub.unsubscribe()
    info = await js.consumer_info("TAPIO_EVENTS", "pipeline")
    await nc.close()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("inf")
    return offered / elapsed, p99, info.num_pending


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tapio-bench-pipeline-") as tmp:
        work = Path(tmp)
        server = EmbeddedNats(work / "js", server_name="bench").start()
        try:
            nc = await connect(NatsConfig(), "bench-setup", urls=(server.url,))
            await apply_layout(nc.jetstream(), 1)
            await nc.close()
            drain_seconds = args.seconds / 2
            total = int(args.drain_events)
            print(f"generating the event mix ({args.pool:,} events of a 10,000-pod cluster)...", flush=True)
            batches = Batches(event_pool(args.pool))
            rate, proc = await drain_phase(server.url, batches, total, work)
            try:
                cpu_start = proc.cpu_seconds()
                steady_rate, p99, pending = await steady_phase(
                    server.url, batches, args.rate, args.seconds - drain_seconds, proc
                )
                cpu = (proc.cpu_seconds() - cpu_start) / max(1e-6, args.seconds - drain_seconds) * 100
            finally:
                proc.sample()
                proc.stop()
            rss = proc.peak_rss // (1024 * 1024)
            print(
                f"steady: {steady_rate:,.0f} events/s offered for {args.seconds - drain_seconds:.0f}s, "
                f"p99 publish->output {p99:.0f} ms, {pending} messages pending at the end, pipeline CPU {cpu:.0f}%"
            )
            print(
                f"events_per_second={rate:.0f} p99_ms={p99:.0f} rss_mb={rss} "
                f"steady_events_per_second={steady_rate:.0f} steady_pending={pending} cpu_percent={cpu:.0f}"
            )
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="bench-pipeline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="length of the steady phase x2 (default 20)"
    )
    parser.add_argument(
        "--drain-events",
        type=int,
        default=1_000_000,
        help="events stored before the drain (default 1,000,000)",
    )
    parser.add_argument(
        "--rate", type=float, default=200_000.0, help="events/s offered in the steady phase (default 200,000)"
    )
    parser.add_argument(
        "--pool", type=int, default=200_000, help="distinct events of the mix to draw batches from"
    )
    args = parser.parse_args()
    anyio.run(main_async, args)


if __name__ == "__main__":
    main()
