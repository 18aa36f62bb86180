"""Correlator benchmark: engine alone, then end to end through NATS JetStream.

    bazel run //bench:correlator -- --seconds 30

Last line: engine_events_per_second=N e2e_events_per_second=N p99_event_to_correlation_ms=N rss_mb=N
(rss_mb: peak RSS of the correlator process in the end-to-end run, 100,000 tracked pods; the
engine-alone phase runs in a process of its own so that it does not count).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import anyio
import correlator_e2e
import correlator_engine


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=30.0, help="timed seconds of each phase (default 30)")
    p.add_argument("--pods", type=int, default=100_000, help="tracked pods (default 100000)")
    p.add_argument(
        "--rate", type=int, default=100_000, help="steady event rate of the latency phase (default 100000/s)"
    )
    p.add_argument(
        "--pool", type=int, default=400_000, help="generated events replayed by the producer (default 400000)"
    )
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    print("bench: engine alone (attrs events in) ...", flush=True)
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        engine = pool.submit(
            correlator_engine.run, args.seconds / 3, args.pods, args.seed, ("model",)
        ).result()
    for line in correlator_engine.describe(engine):
        print(line)
    assert engine.model is not None
    preload = int(args.seconds * 250_000)
    e2e = anyio.run(correlator_e2e.run_e2e, args.seconds, args.rate, args.pods, args.pool, args.seed, preload)
    print(
        f"e2e: {e2e.events_per_second:,.0f} events/s over {e2e.drained_events:,} events; latency at "
        f"{e2e.steady_rate:,.0f} events/s: p50 {e2e.p50_ms:.0f} ms, p99 {e2e.p99_ms:.0f} ms, max {e2e.max_ms:.0f} ms "
        f"({e2e.latency_samples} medium/high correlation revisions; "
        + ", ".join(f"{t} {n} p50 {ms:.0f} ms" for t, (n, ms) in e2e.p50_by_type.items())
        + f"); {e2e.snapshots} snapshots taken meanwhile (forked; a child added at most {e2e.snapshot_child_mb} MB of private memory)"
    )
    print(
        f"engine_events_per_second={engine.model.events_per_second:.0f} "
        f"e2e_events_per_second={e2e.events_per_second:.0f} "
        f"p99_event_to_correlation_ms={e2e.p99_ms:.0f} rss_mb={e2e.rss_mb}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
