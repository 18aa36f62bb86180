"""End-to-end correlator benchmark: events through a local JetStream into the NATS runner.

A producer process (its own core share, like a collector fleet) publishes the synthetic cluster of
`tapio_correlator_testing.loadgen` (100,000 pods) through the publisher (batched, compressed) into
TAPIO_EVENTS on a local nats-server (file store). This process runs the correlator's Runner (the
code `tapio-correlator serve` runs: pull on its durable consumer with its filter subjects, decode,
engine, publish correlations, wait for their acks, ack the input).

- drain: the producer first preloads the stream (untimed); then the runner drains it. Rate =
  events published into the stream / wall time from the first pull until the runner passed the
  last message (the events its filter subjects leave out never reach it: also printed, the
  events it was given per second).
- sustained: the producer publishes at a steady rate with event times = its wall clock while the
  runner consumes, in steps of `step_seconds`; a step is sustained when the runner's lag (wall
  clock - the newest event time it processed; the producer's 200 ms batch linger is part of it)
  stays below `max_lag` over the step's second half without growing (slope <= 0.05 s/s), and the
  producer reached the rate asked. The rate goes up by 20% after a sustained step and halfway back
  after a failed one: the figure is the highest sustained step, with the p99 latency of that step:
  for every medium/high correlation revision received on tapio.correlations.>, receive time -
  the publish time of the newest event it covers (`last_seen`). The engine waits
  `reorder_slack` of event time before it acts (out-of-order tolerance): part of the latency.
The producer (bench/correlator_producer.py) replays a pool of generated events with fresh ids and
times written in by hand, so generation does not bound the rate. Each step says which side bounded
it (`Step.bound`): the producer (it published less than asked), the correlator (the producer kept
the rate, the runner's lag did not stay bounded) or neither; and the CPU each process (correlator,
nats-server, producer) spent per event published, with the rate the machine's cores hold at that
total (bench/cpu_budget.py).
"""

from __future__ import annotations

import cProfile
import multiprocessing as mp
import os
import pstats
import resource
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import anyio
import attrs
import psutil
from correlator_producer import producer_main
from cpu_budget import CpuBudget
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from tapio.correlations.v1 import correlations_pb2
from tapio_common.config import NatsConfig
from tapio_common.metrics import ComponentMetrics
from tapio_common.nats.connect import connect
from tapio_common.nats.embedded import EmbeddedNats
from tapio_correlator.service.runner import Runner
from tapio_correlator.service.settings import RunnerSettings
from tapio_correlator.service.state_store import StateStore
from tapio_jetstream.layout import EVENTS
from tapio_jetstream.streams import apply_layout
from tapio_publisher import Publisher, PublisherSettings

NS = 1_000_000_000
SLOPE = 0.05  # lag growth (s/s) over a step's second half above which the rate is not sustained


@attrs.frozen
class Step:
    """One steady step: the rate asked, the rate the producer reached, and what the runner did."""

    asked: int
    rate: float  # events/s the producer published
    sustained: bool
    lag_s: float  # the most lag over the step's second half
    slope: float  # lag growth over the second half, s/s
    p50_ms: float
    p99_ms: float
    samples: int
    cpu_us_per_event: float  # CPU of this (the correlator's) process per event it was given
    events_per_message: float = float("nan")  # events given / messages handled (the producer's batching)
    cpu_us_per_message: float = float("nan")  # the correlator's CPU per message handled
    server_cpu_us_per_event: float = float("nan")  # nats-server's CPU (same machine) per event given
    by_type: dict[str, tuple[int, float]] = attrs.field(factory=dict)  # type -> (revisions, p50 ms)
    budget: str = ""  # CpuBudget.report per event published
    cores_used: dict[str, float] = attrs.field(factory=dict)  # process -> CPU seconds / wall seconds
    machine_busy: float = float("nan")  # cores the whole machine was busy (every process, others too)

    @property
    def reached(self) -> bool:
        return self.rate >= 0.95 * self.asked

    @property
    def bound(self) -> str:
        """Which side bounded this step: `producer` (published < 95% of the rate asked),
        `correlator` (the rate was published, the runner's lag did not stay bounded) or `none`."""
        if not self.reached:
            return "producer"
        return "none" if self.sustained else "correlator"

    def bound_text(self) -> str:
        used = ", ".join(f"{k} {v:.2f}" for k, v in self.cores_used.items())
        total = sum(self.cores_used.values())
        what = {
            "producer": "producer-bound: it published less than asked",
            "correlator": "correlator-bound: the rate was published, the runner fell behind",
            "none": "held: neither side was the limit at this rate",
        }[self.bound]
        return (
            f"{what} (cores busy: {used}; {total:.2f} of {os.cpu_count()}, the machine "
            f"{self.machine_busy:.2f} with everything else)"
        )

    def describe(self) -> str:
        verdict = "sustained" if self.sustained else "NOT sustained"
        return (
            f"step {self.asked:,}/s asked, {self.rate:,.0f}/s published: {verdict} (lag at most "
            f"{self.lag_s:.2f} s, growing {self.slope:+.3f} s/s over the second half); latency p50 "
            f"{self.p50_ms:.0f} ms p99 {self.p99_ms:.0f} ms over {self.samples} medium/high revisions; "
            f"{self.cpu_us_per_event:.1f} us CPU per event given to the correlator "
            f"({self.events_per_message:.0f} events a message, {self.cpu_us_per_message:.0f} us CPU a "
            f"message; nats-server {self.server_cpu_us_per_event:.1f} us CPU per event); "
            + self.bound_text()
            + (f"\n      {self.budget}" if self.budget else "")
        )


@attrs.frozen
class E2EResult:
    drain_events_per_second: float  # events of the stream passed per second (filtered ones included)
    delivered_per_second: float  # events the runner was given per second
    drained_events: int
    delivered_events: int
    drain_cpu_us_per_event: float  # per event of the stream
    steps: tuple[Step, ...]
    best: Step | None
    producer_bound: bool
    bound_by: str  # what bounded the figure: the first step above the best that failed, or the best
    rss_mb: int
    snapshots: int
    snapshot_child_mb: int
    p50_by_type: dict[str, tuple[int, float]]  # type -> (revisions, p50 ms) in the best step
    unfiltered: tuple[float, float] | None  # (events/s, CPU us per event) of the drain without filters


class ProducerDied(RuntimeError):
    """The producer process ended before answering (its traceback is above)."""


def _answers(conn: Connection, proc: BaseProcess) -> Callable[[], Awaitable[tuple[Any, ...]]]:
    """Awaits the producer's next answer; raises ProducerDied when it ends instead of answering."""

    def wait() -> tuple[Any, ...]:
        while not conn.poll(1.0):
            if not proc.is_alive():
                raise ProducerDied(f"the producer process ended (exit code {proc.exitcode})")
        answer: tuple[Any, ...] = conn.recv()
        return answer

    async def next_answer() -> tuple[Any, ...]:
        return await anyio.to_thread.run_sync(wait)

    return next_answer


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy (every core, every process) since boot."""
    t = psutil.cpu_times()
    return float(sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal")))


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 3:
        return 0.0
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


async def run_e2e(
    *,
    seconds: float,
    pods: int,
    pool_size: int,
    seed: int,
    preload: int,
    step_seconds: float,
    max_steps: int,
    start_rate: int,
    max_lag: float,
    compare_filter: bool = False,
    profile: str = "",
    batch_linger: float | None = None,
) -> E2EResult:
    with tempfile.TemporaryDirectory(prefix="tapio-bench-") as tmp, EmbeddedNats(tmp + "/js") as server:
        nc = await connect(NatsConfig(urls=(server.url,)), "bench-correlator")
        js = nc.jetstream()
        await apply_layout(js, 1)
        server_pid = server.proc.pid if server.proc is not None else 0
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=producer_main, args=(server.url, tmp + "/producer", child, pods, pool_size, seed)
        )
        proc.start()
        assert proc.pid is not None
        procs = {"correlator": os.getpid(), "nats-server": server_pid, "producer": proc.pid}
        print(f"bench: producer generating {pods:,} pods and a pool of {pool_size:,} events ...", flush=True)
        answer = _answers(parent, proc)
        setup_count = (await answer())[1]
        parent.send(("preload", preload))
        await answer()
        last = (await js.stream_info(EVENTS)).state.last_seq
        stream_events = setup_count + preload
        print(f"bench: preloaded {stream_events:,} events ({last:,} messages)", flush=True)
        metrics = ComponentMetrics("correlator")
        settings = RunnerSettings()  # what `serve` runs: snapshots every 30 s / 2M events, slack 0.5 s
        if batch_linger is not None:
            settings = attrs.evolve(settings, batch_linger=batch_linger)
        received: list[tuple[int, str, int]] = []  # (receive time, type, last_seen) of medium/high
        recording: list[bool] = []

        async def on_corr(msg: Msg) -> None:
            if not recording:
                return
            c = correlations_pb2.Correlation()
            c.ParseFromString(msg.data)
            if c.confidence in (correlations_pb2.CONFIDENCE_HIGH, correlations_pb2.CONFIDENCE_MEDIUM):
                received.append((time.time_ns(), c.type, c.last_seen.seconds * NS + c.last_seen.nanos))

        await nc.subscribe("tapio.correlations.>", cb=on_corr)
        pub_settings = PublisherSettings.from_section({}, tmp + "/correlator", batch_max_events=1)
        steps: list[Step] = []
        async with Publisher(pub_settings, nc=nc, registry=metrics.registry) as pub:
            store = await StateStore.open(js, settings.state_bucket)
            runner = Runner(nc, pub, store, settings, metrics)
            await runner.recover()

            async def passed() -> bool:  # nothing else is published meanwhile
                info = await js.consumer_info(EVENTS, runner.consumer.spec.durable)
                return bool(info.num_pending == 0 and info.num_ack_pending == 0)

            async with anyio.create_task_group() as tg:
                tg.start_soon(runner.run)
                prof = cProfile.Profile(time.process_time) if profile else None
                cpu0, started = _cpu(), time.perf_counter()
                if prof is not None:
                    prof.enable()
                while not await passed():  # noqa: ASYNC110 - polls the server
                    await anyio.sleep(0.05)
                drain = time.perf_counter() - started
                if prof is not None:
                    prof.disable()
                    _report_profile(prof, profile, runner.events_in)
                drain_cpu = _cpu() - cpu0
                delivered = runner.events_in
                print(
                    f"bench: drained {stream_events:,} events of the stream in {drain:.1f}s; the runner was "
                    f"given {delivered:,} of them (its filter subjects take the rest out); "
                    f"{drain_cpu / stream_events * 1e6:.1f} us CPU of this process per stream event",
                    flush=True,
                )
                rate = start_rate or max(20_000, int(stream_events / drain * 0.8) // 10_000 * 10_000)
                failed_at = 0
                # Warm-up, not counted: event time jumps from the preload's to the wall clock, and
                # incidents need tens of seconds of live events to reach medium/high revisions.
                warm = await _step(
                    runner, parent, answer, rate // 2, step_seconds, max_lag, received, recording, procs
                )
                print("bench: warm-up " + warm.describe(), flush=True)
                await _catch_up(runner, js, max_wait=30.0)
                for n in range(max_steps):
                    prof = cProfile.Profile(time.process_time) if profile and n == 0 else None
                    events0 = runner.events_in
                    if prof is not None:
                        prof.enable()
                    step = await _step(
                        runner, parent, answer, rate, step_seconds, max_lag, received, recording, procs
                    )
                    if prof is not None:
                        prof.disable()
                        _report_profile(prof, profile + ".step", runner.events_in - events0)
                    steps.append(step)
                    print("bench: " + step.describe(), flush=True)
                    if step.sustained and not step.reached:
                        break  # producer-bound: the correlator kept up with all it could send
                    if step.sustained:
                        rate = int((rate + failed_at) / 2) if failed_at else int(rate * 1.2)
                    else:
                        failed_at = rate
                        good = [s.asked for s in steps if s.sustained]
                        rate = int((max(good) + rate) / 2) if good else int(rate * 0.7)
                    if failed_at and rate >= failed_at * 0.97:
                        break
                    if any(s.asked == rate for s in steps):
                        break
                    await _catch_up(runner, js, max_wait=30.0)
                runner.stopping = True
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
            unfiltered = None
            if compare_filter:
                unfiltered = await _drain_unfiltered(nc, pub, settings, last, stream_events)
            parent.send(("stop",))
        proc.join(30)
        await nc.close()
    sustained = [s for s in steps if s.sustained]
    best = max(sustained, key=lambda s: s.rate) if sustained else None
    return E2EResult(
        drain_events_per_second=stream_events / drain,
        delivered_per_second=delivered / drain,
        drained_events=stream_events,
        delivered_events=delivered,
        drain_cpu_us_per_event=drain_cpu / stream_events * 1e6,
        steps=tuple(steps),
        best=best,
        producer_bound=best is not None and not best.reached,
        bound_by=_bound_by(steps, best),
        rss_mb=rss_mb,
        snapshots=runner.snapshots,
        snapshot_child_mb=runner.snapshot_child_mb,
        p50_by_type=best.by_type if best is not None else {},
        unfiltered=unfiltered,
    )


def _bound_by(steps: list[Step], best: Step | None) -> str:
    """What bounded the figure: the best step itself when the producer fell short there, else the
    lowest failed step above it (the correlator, or the producer if it could not reach that rate)."""
    if best is None:
        return steps[0].bound_text() if steps else "no step ran"
    if best.bound == "producer":
        return best.bound_text()
    above = sorted((s for s in steps if s.asked > best.asked and s.bound != "none"), key=lambda s: s.asked)
    if above:
        return f"the step at {above[0].asked:,}/s asked: " + above[0].bound_text()
    return "no step above it was tried (raise --steps)"


async def _step(
    runner: Runner,
    parent: Connection,
    producer: Callable[[], Awaitable[tuple[Any, ...]]],
    rate: int,
    seconds: float,
    max_lag: float,
    received: list[tuple[int, str, int]],
    recording: list[bool],
    procs: dict[str, int],
) -> Step:
    """One steady step at `rate`: lag sampled every 0.25 s, latencies of the revisions it completed."""
    start_ns = time.time_ns()
    first = len(received)
    recording.append(True)
    events0, cpu0, msgs0 = runner.events_in, _cpu(), runner.consumer.handled
    budget = CpuBudget(procs)
    budget.start()
    machine0 = _machine_busy()
    parent.send(("steady", rate, seconds))
    lags: list[tuple[float, float]] = []
    t0 = time.monotonic()
    answer: list[tuple[str, int, float]] = []

    async def wait_answer() -> None:
        answer.append(await producer())

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait_answer)
        while not answer:
            await anyio.sleep(0.25)
            now = time.monotonic() - t0
            if runner.last_event_ns >= start_ns:
                lags.append((now, time.time_ns() / NS - runner.last_event_ns / NS))
            elif now > 1.0:
                lags.append((now, now))  # nothing of this step processed yet
    cpu = _cpu() - cpu0
    given = runner.events_in - events0
    messages = runner.consumer.handled - msgs0
    used = budget.stop()
    machine = _machine_busy() - machine0
    server_cpu = used["nats-server"]
    _, total, elapsed = answer[0]
    await anyio.sleep(1.0)  # revisions of the step's last events
    recording.clear()
    by_type: dict[str, list[float]] = {}
    latencies: list[float] = []
    for at, typ, seen in received[first:]:
        if seen >= start_ns:  # completed by an event of this step
            latencies.append((at - seen) / 1e6)
            by_type.setdefault(typ, []).append(latencies[-1])
    second_half = [p for p in lags if p[0] >= elapsed / 2]
    worst = max((lag for _, lag in second_half), default=float("inf"))
    slope = _slope(second_half)
    return Step(
        asked=rate,
        rate=total / elapsed,
        sustained=worst <= max_lag and slope <= SLOPE,
        lag_s=worst,
        slope=slope,
        p50_ms=statistics.median(latencies) if latencies else float("nan"),
        p99_ms=_pct(latencies, 0.99),
        samples=len(latencies),
        cpu_us_per_event=cpu / given * 1e6 if given else float("nan"),
        events_per_message=given / messages if messages else float("nan"),
        cpu_us_per_message=cpu / messages * 1e6 if messages else float("nan"),
        server_cpu_us_per_event=server_cpu / given * 1e6 if given else float("nan"),
        by_type={k: (len(v), statistics.median(v)) for k, v in sorted(by_type.items())},
        budget="(per event published) " + budget.report(total, "event"),
        cores_used={k: v / elapsed for k, v in used.items()},
        machine_busy=machine / elapsed,
    )


async def _catch_up(runner: Runner, js: JetStreamContext, max_wait: float) -> None:
    """Until the runner has passed everything published (after a step it could not sustain)."""
    deadline = time.monotonic() + max_wait
    info = await js.stream_info(EVENTS)
    target = info.state.last_seq
    while time.monotonic() < deadline:
        c = await js.consumer_info(EVENTS, runner.consumer.spec.durable)
        if c.delivered.stream_seq >= target and c.num_ack_pending == 0:
            return
        await anyio.sleep(0.1)


async def _drain_unfiltered(
    nc: Client, pub: Publisher, settings: RunnerSettings, last: int, stream_events: int
) -> tuple[float, float]:
    """The same preloaded stream drained again by a second runner on a durable without filter
    subjects (every event reaches it): events of the stream per second and CPU us per event."""
    from tapio_jetstream.layout import ConsumerSpec
    from tapio_jetstream.streams import consumer_config

    spec = ConsumerSpec(EVENTS, "correlator-unfiltered", "tapio.events.>", description="bench")
    js = nc.jetstream()
    await js.add_consumer(EVENTS, consumer_config(spec))
    store = await StateStore.open(js, settings.state_bucket + "_UNFILTERED")
    runner = Runner(nc, pub, store, settings, ComponentMetrics("correlator_unfiltered"), spec=spec)
    await runner.recover()
    async with anyio.create_task_group() as tg:
        tg.start_soon(runner.run)
        cpu0, started = _cpu(), time.perf_counter()
        while True:  # every message up to `last` acked (the steady steps published more after it)
            info = await js.consumer_info(EVENTS, spec.durable)
            if info.ack_floor.stream_seq >= last:
                break
            await anyio.sleep(0.05)
        drain = time.perf_counter() - started
        cpu = _cpu() - cpu0
        given = runner.events_in
        runner.stopping = True
    print(
        f"bench: without filter subjects: drained {stream_events:,} events in {drain:.1f}s, all "
        f"{given:,} given to the runner; {cpu / stream_events * 1e6:.1f} us CPU per stream event",
        flush=True,
    )
    return stream_events / drain, cpu / stream_events * 1e6


def _report_profile(prof: cProfile.Profile, path: str, events: int) -> None:
    prof.dump_stats(path)
    stats = pstats.Stats(prof)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    print(f"bench: profile written to {path} ({total:.1f} s profiled, {events:,} events)")
    stats.sort_stats("tottime").print_stats(20)
