"""Correlator benchmark: the engine on the production decode path, then end to end through NATS
JetStream (a drain of a preloaded stream, then the highest rate sustained while a producer publishes).

    bazel run //bench:correlator -- --seconds 20

Last line: engine_events_per_second=N drain_events_per_second=N e2e_events_per_second=N
p99_event_to_correlation_ms=N e2e_cpu_us_per_event=N events_per_message=N e2e_bound=SIDE rss_mb=N
[unfiltered_drain_events_per_second=N] load1=N
- engine: publisher-encoded batch messages of the realistic mix (only the subjects the correlator's
  durable consumer takes) -> decode_views -> Engine.process_view (what the runner does),
  `--seconds / 3` of timed work, in
  a process of its own (bench/correlator_engine.py);
- drain: events of a preloaded stream per second of the real Runner draining it;
- e2e: the highest producer rate at which the runner's lag stayed bounded (found in steps, see
  bench/correlator_e2e.py), with the p99 event-to-correlation latency of that step;
- e2e_cpu_us_per_event, events_per_message: the correlator process's CPU per event given to it in
  that step (load-independent, unlike the rates) and the producer's batching it saw;
- e2e_bound: what bounded the e2e figure: `producer` (the load generator could not publish more),
  `correlator` (the next step up was published but the runner fell behind) or `none`; the lines
  above it give each process's CPU per event published and the rate the cores hold at that total;
- rss_mb: peak RSS of the correlator process (100,000 tracked pods);
- load1: the machine's 1-minute load average at the end (a busy machine gives lower figures).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import anyio
import correlator_e2e
import correlator_engine


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--seconds",
        type=float,
        default=20.0,
        help="scale of every phase: engine seconds/3 timed; preload seconds x 250,000 events; "
        "a warm-up and steps of max(8, seconds/2) s each (default 20)",
    )
    p.add_argument("--pods", type=int, default=100_000, help="tracked pods (default 100000)")
    p.add_argument(
        "--pool", type=int, default=400_000, help="generated events replayed by the producer (default 400000)"
    )
    p.add_argument(
        "--start-rate",
        type=int,
        default=0,
        help="events/s of the first steady step (default 0: 80%% of the drain rate)",
    )
    p.add_argument("--steps", type=int, default=5, help="steady steps at most (default 5)")
    p.add_argument(
        "--max-lag",
        type=float,
        default=1.5,
        help="seconds of lag (wall clock - newest event processed) a sustained step stays below (default 1.5)",
    )
    p.add_argument(
        "--compare-filter",
        action="store_true",
        help="drain the preloaded stream a second time on a durable consumer without filter subjects",
    )
    p.add_argument(
        "--profile", default="", metavar="FILE", help="cProfile the drain phase into FILE (prints the top)"
    )
    p.add_argument(
        "--batch-linger",
        type=float,
        default=None,
        metavar="SECONDS",
        help="the runner's batch_linger (default: the serve default)",
    )
    p.add_argument("--skip-engine", action="store_true", help="leave out the engine phase")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    print(f"bench: {_load()}", flush=True)
    engine_rate = float("nan")
    if not args.skip_engine:
        print("bench: engine on the production decode path (wire bytes -> decode -> engine) ...", flush=True)
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
            engine = pool.submit(
                correlator_engine.run, args.seconds / 3, args.pods, args.seed, ("wire",)
            ).result()
        for line in correlator_engine.describe(engine):
            print(line)
        assert engine.wire is not None
        engine_rate = engine.wire.events_per_second
    e2e = anyio.run(_e2e, args)
    best = e2e.best
    print(
        f"drain: {e2e.drain_events_per_second:,.0f} events/s of the stream ({e2e.drained_events:,} events; "
        f"{e2e.delivered_per_second:,.0f}/s given to the runner, the rest left out by its filter subjects), "
        f"{e2e.drain_cpu_us_per_event:.1f} us CPU per event"
    )
    if best is None:
        print("e2e: no rate was sustained")
    else:
        print(
            f"e2e: {best.rate:,.0f} events/s sustained{' (producer-bound: the producer sent no more)' if e2e.producer_bound else ''}; "
            f"latency p50 {best.p50_ms:.0f} ms, p99 {best.p99_ms:.0f} ms ({best.samples} medium/high revisions; "
            + ", ".join(f"{t} {n} p50 {ms:.0f} ms" for t, (n, ms) in best.by_type.items())
            + f"); {e2e.snapshots} snapshots taken meanwhile (forked; a child added at most {e2e.snapshot_child_mb} MB of private memory)"
        )
        print(f"e2e: what bounded it: {e2e.bound_by}")
        if best.budget:
            print(f"e2e: at {best.rate:,.0f} events/s: {best.budget}")
    if e2e.unfiltered is not None:
        rate, cpu = e2e.unfiltered
        print(
            f"filter subjects: drain {e2e.drain_events_per_second:,.0f} events/s with, {rate:,.0f} without "
            f"(x{e2e.drain_events_per_second / rate:.2f}); CPU {e2e.drain_cpu_us_per_event:.1f} vs {cpu:.1f} us per event"
        )
    print(f"bench: {_load()}")
    load1 = os.getloadavg()[0]
    extra = f" unfiltered_drain_events_per_second={e2e.unfiltered[0]:.0f}" if e2e.unfiltered else ""
    print(
        f"engine_events_per_second={engine_rate:.0f} drain_events_per_second={e2e.drain_events_per_second:.0f} "
        f"e2e_events_per_second={best.rate if best else 0:.0f} "
        f"p99_event_to_correlation_ms={best.p99_ms if best else float('nan'):.0f} "
        f"e2e_cpu_us_per_event={best.cpu_us_per_event if best else float('nan'):.1f} "
        f"events_per_message={best.events_per_message if best else float('nan'):.0f} "
        f"e2e_bound={_side(e2e)} rss_mb={e2e.rss_mb}{extra} "
        f"load1={load1:.1f}"
    )
    return 0


def _side(e2e: correlator_e2e.E2EResult) -> str:
    """producer / correlator / none: the side that bounded the e2e figure (see E2EResult.bound_by)."""
    if e2e.best is None:
        return "none"
    if e2e.best.bound == "producer":
        return "producer"
    above = [s for s in e2e.steps if s.asked > e2e.best.asked and s.bound != "none"]
    return min(above, key=lambda s: s.asked).bound if above else "none"


async def _e2e(args: argparse.Namespace) -> correlator_e2e.E2EResult:
    return await correlator_e2e.run_e2e(
        seconds=args.seconds,
        pods=args.pods,
        pool_size=args.pool,
        seed=args.seed,
        preload=int(args.seconds * 250_000),
        step_seconds=max(8.0, args.seconds / 2),
        max_steps=args.steps,
        start_rate=args.start_rate,
        max_lag=args.max_lag,
        compare_filter=args.compare_filter,
        profile=args.profile,
        batch_linger=args.batch_linger,
    )


if __name__ == "__main__":
    sys.exit(main())
