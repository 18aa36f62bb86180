"""Correlation engine benchmark: a realistic event mix with 100,000 tracked pods through the engine.

Two paths (model by default), each on a fresh engine that first loads the cluster's initial list:
- model: attrs Events in (`Engine.process`), the engine's own speed;
- pb: serialized protobuf Events in, decoded and fed to `Engine.process_pb` (what the NATS
  runner does per event).
Events are generated in chunks outside the timed part (tapio_correlator_testing.loadgen); only the engine
(and, for pb, decoding) is timed, in wall time. CPU time is printed too: on a busy machine the two
differ. Last line: `engine_events_per_second=N [pb_events_per_second=N] rss_mb=N` (rss_mb: peak
RSS of the whole process, generator included).

Run alone: .venv/bin/python bench/correlator_engine.py --seconds 30
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from collections.abc import Sequence

import attrs

from tapio.events.v1 import events_pb2
from tapio_common.model.convert import event_from_proto
from tapio_common.model.fast import event_from_pb
from tapio_correlator.engine import Engine, EngineConfig
from tapio_correlator_testing.loadgen import Mix, to_pb

CHUNK = 20_000


@attrs.frozen
class PathResult:
    """One path's figures."""

    events_per_second: float  # wall time
    cpu_events_per_second: float
    events: int
    setup_events_per_second: float
    incidents_injected: int
    correlations_medium_high: int
    tracked_pods: int


@attrs.frozen
class BenchResult:
    model: PathResult | None
    pb: PathResult | None
    rss_mb: int

    def line(self) -> str:
        parts = []
        if self.model is not None:
            parts.append(f"engine_events_per_second={round(self.model.events_per_second)}")
        if self.pb is not None:
            parts.append(f"pb_events_per_second={round(self.pb.events_per_second)}")
        return " ".join([*parts, f"rss_mb={self.rss_mb}"])


def _rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def run_path(
    seconds: float, pods: int, seed: int, pb: bool, config: EngineConfig | None = None
) -> PathResult:
    """Loads the cluster, then feeds the steady-state mix until `seconds` of timed work."""
    mix = Mix(pods, seed)
    engine = Engine(config)
    setup = mix.setup()
    started = time.perf_counter()
    for ev in setup:
        engine.process(ev)
    engine.advance(mix.t)  # the whole initial list is processed before the steady state
    setup_rate = len(setup) / (time.perf_counter() - started)
    del setup
    wall = cpu = 0.0
    events = 0
    found: set[str] = set()
    while wall < seconds:
        chunk = mix.chunk(CHUNK)
        if pb:
            data = [to_pb(ev).SerializeToString() for ev in chunk]
            del chunk
            w0, c0 = time.perf_counter(), time.process_time()
            for raw in data:
                msg = events_pb2.Event()
                msg.ParseFromString(raw)
                for c in engine.process_pb(msg):
                    if c.score >= 0.5:
                        found.add(c.id)
            n = len(data)
        else:
            w0, c0 = time.perf_counter(), time.process_time()
            for ev in chunk:
                for c in engine.process(ev):
                    if c.score >= 0.5:
                        found.add(c.id)
            n = len(chunk)
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        events += n
    return PathResult(
        events_per_second=events / wall,
        cpu_events_per_second=events / cpu if cpu else 0.0,
        events=events,
        setup_events_per_second=setup_rate,
        incidents_injected=mix.incidents,
        correlations_medium_high=len(found),
        tracked_pods=engine.state_size()["pods"],
    )


def run(
    seconds: float = 30.0, pods: int = 100_000, seed: int = 1, paths: Sequence[str] = ("model",)
) -> BenchResult:
    """The benchmark: `seconds` of timed work per path ("model" and/or "pb").

    Generating the events takes about three times as long as processing them (untimed), so a
    path runs for about 4 x `seconds` of wall time.
    """
    results: dict[str, PathResult] = {}
    for path in paths:
        results[path] = run_path(seconds, pods, seed, pb=path == "pb")
        gc.collect()
    return BenchResult(model=results.get("model"), pb=results.get("pb"), rss_mb=_rss_mb())


def measure_convert(events: int = 20_000, seed: int = 1) -> dict[str, float]:
    """Microseconds per event: protobuf decode, fast.event_from_pb, and the generic cattrs path."""
    mix = Mix(2_000, seed)
    mix.setup()
    data = [to_pb(ev).SerializeToString() for ev in mix.chunk(events)]
    msgs = []
    started = time.perf_counter()
    for raw in data:
        msg = events_pb2.Event()
        msg.ParseFromString(raw)
        msgs.append(msg)
    decode = time.perf_counter() - started
    started = time.perf_counter()
    for msg in msgs:
        event_from_pb(msg)
    fast = time.perf_counter() - started
    sample = msgs[: max(1, events // 10)]
    started = time.perf_counter()
    for msg in sample:
        event_from_proto(msg)
    generic = time.perf_counter() - started
    return {
        "decode_us_per_event": decode / len(msgs) * 1e6,
        "fast_convert_us_per_event": fast / len(msgs) * 1e6,
        "cattrs_convert_us_per_event": generic / len(sample) * 1e6,
    }


def describe(r: BenchResult) -> list[str]:
    """Human lines: per path, the rates (wall and CPU), events, setup speed, incidents found."""
    out = []
    for name, p in (("model", r.model), ("pb", r.pb)):
        if p is None:
            continue
        out.append(
            f"{name}: {p.events_per_second:,.0f} events/s wall, {p.cpu_events_per_second:,.0f} events/s cpu, "
            f"{p.events:,} events, {p.tracked_pods:,} tracked pods, initial list {p.setup_events_per_second:,.0f} "
            f"events/s, {p.correlations_medium_high} medium/high correlations for {p.incidents_injected} "
            f"injected incidents (the last minutes' are still open)"
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=30.0, help="timed seconds per path (default 30)")
    p.add_argument("--pods", type=int, default=100_000, help="tracked pods (default 100000)")
    p.add_argument("--seed", type=int, default=1, help="seed of the event mix (default 1)")
    p.add_argument(
        "--path",
        choices=("model", "pb", "both"),
        default="model",
        help="model: attrs Events in (the headline figure); pb: serialized protobuf, decoded + "
        "process_pb (what the NATS runner does); both (default: model)",
    )
    p.add_argument(
        "--convert",
        action="store_true",
        help="only measure protobuf -> model conversion (fast.event_from_pb vs the cattrs path)",
    )
    args = p.parse_args(argv)
    if args.convert:
        print(" ".join(f"{k}={v:.2f}" for k, v in measure_convert().items()))
        return 0
    result = run(args.seconds, args.pods, args.seed, ("model", "pb") if args.path == "both" else (args.path,))
    for line in describe(result):
        print(line)
    print(result.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
