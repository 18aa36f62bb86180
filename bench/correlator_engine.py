"""Correlation engine benchmark: a realistic event mix with 100,000 tracked pods through the engine.

Three paths, each on a fresh engine that first loads the cluster's initial list:
- wire (the headline figure): the production decode path. The mix is published as a collector
  fleet would (`tapio_publisher.encoder.Encoder`: per-subject EventBatch messages, 200 ms linger
  at 200,000 events/s, zstd), keeping only the subjects the correlator's durable consumer takes
  (its filter subjects); timed: `decode_views(headers, payload)` of each message (the correlator's
  decode: context and k8s kept as wire bytes), then `Engine.process_view` of each event, which is
  what the NATS runner does per message. The initial list reaches the engine the same way
  (untimed). `--compare`: the protobuf path (`decode_events` + `Engine.process_pb`) on a second
  engine fed the same messages, the two taking turns chunk by chunk in one process;
- pb: serialized protobuf Events in, decoded one by one and fed to `Engine.process_pb`;
- model: attrs Events in (`Engine.process`), the engine's own speed.
Events are generated in chunks outside the timed part (tapio_correlator_testing.loadgen); only the engine
(and, for wire and pb, decoding) is timed, in wall time. CPU time is printed too: on a busy machine the
two differ, and CPU microseconds per event (split into decode and engine for the wire path) are the
figure to compare across runs. After the initial list the process's collector is set up as the
correlator's runner sets it up after a restore (`settle_memory`: the state built so far frozen out of
the collector's view, young collections every 50,000 allocations). Last line:
`engine_events_per_second=N [pb_events_per_second=N] rss_mb=N` (rss_mb: peak RSS of the whole
process, generator included).

Run alone: .venv/bin/python bench/correlator_engine.py --seconds 30 [--compare]
Where the time goes: --profile FILE (cProfile, CPU timer, of the wire path's timed part) or
--by-type (CPU per event of each event type/action, a timer around each event).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from tapio.events.v1 import events_pb2
from tapio_common.model import Correlation, Event
from tapio_common.model.convert import event_from_proto
from tapio_common.model.fast import event_from_pb
from tapio_correlator.engine import Engine, EngineConfig
from tapio_correlator.engine.views import decode_views
from tapio_correlator.service.runner import settle_memory
from tapio_correlator_testing.loadgen import Mix, to_pb
from tapio_jetstream import decode_events
from tapio_jetstream.layout import CORRELATOR, production_layout
from tapio_publisher import PublisherSettings
from tapio_publisher.encoder import Encoder
from tapio_publisher.subjects import event_subject

CHUNK = 20_000
WIRE_RATE = 200_000  # events/s the fleet publishes in the wire path (sets how full batches get)
WIRE_LINGER = 0.2  # the e2e producer's batch linger (bench/correlator_e2e.py)


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
    filtered_share: float = 0.0  # events of the mix the consumer's filter subjects leave out
    events_per_message: float = 1.0
    decode_cpu_us: float = 0.0  # wire path: CPU microseconds per event in decoding
    engine_cpu_us: float = 0.0  # wire path: CPU microseconds per event in the engine
    decoder: str = "view"  # wire path: see DECODERS

    def decoder_names(self) -> str:
        decode, method = DECODERS[self.decoder]
        return f"{decode.__name__} {self.decode_cpu_us:.2f} + Engine.{method} {self.engine_cpu_us:.2f}"


@attrs.frozen
class BenchResult:
    model: PathResult | None
    pb: PathResult | None
    rss_mb: int
    wire: PathResult | None = None

    def line(self) -> str:
        parts = []
        if self.wire is not None:
            parts.append(f"wire_events_per_second={round(self.wire.events_per_second)}")
        if self.model is not None:
            parts.append(f"engine_events_per_second={round(self.model.events_per_second)}")
        if self.pb is not None:
            parts.append(f"pb_events_per_second={round(self.pb.events_per_second)}")
        return " ".join([*parts, f"rss_mb={self.rss_mb}"])


def _rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


class Wire:
    """The mix as the correlator's consumer receives it: per-subject batch messages (subjects its
    filter leaves out removed), encoded by the publisher's own encoder."""

    def __init__(self) -> None:
        settings = PublisherSettings(spool_dir="/nonexistent-bench-spool", batch_linger=WIRE_LINGER)
        self.ids = 0
        self.encoder = Encoder(settings, self._new_id)
        spec = next(c for c in production_layout().consumers if c.durable == CORRELATOR)
        self.takes = getattr(spec, "takes", None)  # None: a layout without filter subjects
        self.taken: dict[str, bool] = {}
        self.now = 0.0
        self.offered = 0
        self.kept = 0

    def _new_id(self) -> str:
        self.ids += 1
        return f"wire-{self.ids:012d}"

    def messages(self, chunk: list[Event]) -> list[tuple[dict[str, str], bytes]]:
        groups: dict[str, list[bytes]] = {}
        for ev in chunk:
            pb = to_pb(ev)
            subject = event_subject(pb)
            if self.takes is not None:
                keep = self.taken.get(subject)
                if keep is None:
                    keep = self.taken[subject] = self.takes(subject)
                if not keep:
                    continue
            groups.setdefault(subject, []).append(pb.SerializeToString())
        self.offered += len(chunk)
        self.now += len(chunk) / WIRE_RATE
        out = []
        for subject, datas in groups.items():
            self.kept += len(datas)
            out += self.encoder.take(subject, datas, self.now)[0]
        out += self.encoder.due(self.now)
        return [(m.headers, m.payload) for m in out]

    def all_messages(self, events: list[Event]) -> list[tuple[dict[str, str], bytes]]:
        """messages() with every batch still open sealed too (nothing left behind)."""
        out = self.messages(events)
        return out + [(m.headers, m.payload) for m in self.encoder.seal_all()]


# How the wire path decodes and feeds the engine: "view" is what the correlator's runner does
# (`decode_views` -> `Engine.process_view`), "pb" the protobuf path it used before
# (`decode_events` -> `Engine.process_pb`), kept for the interleaved comparison (--compare).
DECODERS: dict[str, tuple[Callable[[dict[str, str], bytes], Sequence[Any]], str]] = {
    "view": (decode_views, "process_view"),
    "pb": (decode_events, "process_pb"),
}


@attrs.define
class WireRun:
    """One engine on the wire path and what it has measured so far."""

    decoder: str
    engine: Engine
    setup_rate: float
    wall: float = 0.0
    cpu: float = 0.0
    decode_cpu: float = 0.0
    events: int = 0
    messages: int = 0
    found: set[str] = attrs.Factory(set)

    def feed(
        self,
        batch: list[tuple[dict[str, str], bytes]],
        profile: cProfile.Profile | None = None,
        by_type: dict[tuple[str, str], list[int]] | None = None,
    ) -> None:
        decode, method = DECODERS[self.decoder]
        process = getattr(self.engine, method)
        found = self.found
        clock = time.process_time
        events = decode_cpu = 0.0
        if profile is not None:
            profile.enable()
        w0, c0 = time.perf_counter(), clock()
        for headers, payload in batch:
            d0 = clock()
            decoded = decode(headers, payload)
            decode_cpu += clock() - d0
            events += len(decoded)
            if by_type is not None:
                _timed_events(process, decoded, by_type, found)
                continue
            for msg in decoded:
                for c in process(msg):
                    if c.score >= 0.5:
                        found.add(c.id)
        self.wall += time.perf_counter() - w0
        self.cpu += clock() - c0
        if profile is not None:
            profile.disable()
        self.decode_cpu += decode_cpu
        self.events += int(events)
        self.messages += len(batch)

    def result(self, mix: Mix, wire: Wire) -> PathResult:
        events = self.events
        return PathResult(
            events_per_second=events / self.wall,
            cpu_events_per_second=events / self.cpu if self.cpu else 0.0,
            events=events,
            setup_events_per_second=self.setup_rate,
            incidents_injected=mix.incidents,
            correlations_medium_high=len(self.found),
            tracked_pods=self.engine.state_size()["pods"],
            filtered_share=1 - wire.kept / wire.offered if wire.offered else 0.0,
            events_per_message=events / self.messages if self.messages else 0.0,
            decode_cpu_us=self.decode_cpu / events * 1e6 if events else 0.0,
            engine_cpu_us=(self.cpu - self.decode_cpu) / events * 1e6 if events else 0.0,
            decoder=self.decoder,
        )


def _loaded_engine(
    setup: list[tuple[dict[str, str], bytes]], t: int, decoder: str, config: EngineConfig | None
) -> tuple[Engine, float]:
    """A fresh engine that took the cluster's initial list (untimed) as the runner takes it: as
    wire messages through `decoder`; and its rate (events/s)."""
    decode, method = DECODERS[decoder]
    engine = Engine(config)
    process = getattr(engine, method)
    started = time.perf_counter()
    events = 0
    for headers, payload in setup:
        for msg in decode(headers, payload):
            process(msg)
            events += 1
    engine.advance(t)
    return engine, events / (time.perf_counter() - started)


def run_wire(
    seconds: float,
    pods: int,
    seed: int,
    config: EngineConfig | None = None,
    profile: cProfile.Profile | None = None,
    by_type: dict[tuple[str, str], list[int]] | None = None,
    decoders: Sequence[str] = ("view",),
) -> list[PathResult]:
    """The production decode path: wire messages -> decode -> the engine, one result per decoder.

    With several decoders (--compare), each has its own engine fed the same messages, the decoders
    taking turns chunk by chunk, in alternating order (an interleaved A/B: the machine's load is
    the same for all). `profile`: enabled around the timed part only. `by_type`: (type, action) ->
    [events, CPU ns] filled with a timer around each event (slower: a diagnostic, not the figure)."""
    mix = Mix(pods, seed)
    setup = Wire().all_messages(mix.setup())  # the initial list (pods created) as the consumer gets it
    runs = []
    for decoder in decoders:
        engine, rate = _loaded_engine(setup, mix.t, decoder, config)
        runs.append(WireRun(decoder, engine, rate))
    del setup
    settle_memory()  # what the runner does once its engine is restored (or built)
    wire = Wire()
    turn = 0
    while min(r.wall for r in runs) < seconds:
        batch = wire.messages(mix.chunk(CHUNK))
        turn += 1
        for run_ in runs if turn % 2 else runs[::-1]:
            run_.feed(batch, profile, by_type)
    return [r.result(mix, wire) for r in runs]


def _timed_events(
    process: Callable[[Any], list[Correlation]],
    decoded: Sequence[Any],
    by_type: dict[tuple[str, str], list[int]],
    found: set[str],
) -> None:
    clock = time.process_time_ns
    for msg in decoded:
        key = (msg.type, msg.action)
        t0 = clock()
        out = process(msg)
        spent = clock() - t0
        entry = by_type.get(key)
        if entry is None:
            entry = by_type[key] = [0, 0]
        entry[0] += 1
        entry[1] += spent
        found.update(c.id for c in out if c.score >= 0.5)


def by_type_lines(by_type: dict[tuple[str, str], list[int]]) -> list[str]:
    """Per event type/action: share of the events, CPU per event (timer cost subtracted), share of the CPU."""
    clock = time.process_time_ns
    t0 = clock()
    for _ in range(10_000):
        clock()
    timer = (clock() - t0) / 10_000
    total_n = sum(n for n, _ in by_type.values()) or 1
    total_ns = sum(max(0.0, ns - n * timer) for n, ns in by_type.values()) or 1.0
    out = [f"by type: CPU per event in Engine.process_pb (timer cost {timer:.0f} ns subtracted)"]
    for (typ, action), (n, ns) in sorted(by_type.items(), key=lambda kv: -kv[1][1]):
        own = max(0.0, ns - n * timer)
        out.append(
            f"  {typ}/{action}: {n / total_n:6.1%} of events, {own / n / 1000:7.2f} us/event, "
            f"{own / total_ns:6.1%} of the engine's CPU"
        )
    return out


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
    """The benchmark: `seconds` of timed work per path ("wire", "model" and/or "pb").

    Generating the events takes about three times as long as processing them (untimed), so a
    path runs for about 4 x `seconds` of wall time.
    """
    results: dict[str, PathResult] = {}
    for path in paths:
        if path == "wire":
            results[path] = run_wire(seconds, pods, seed)[0]
        else:
            results[path] = run_path(seconds, pods, seed, pb=path == "pb")
        gc.collect()
    return BenchResult(
        model=results.get("model"), pb=results.get("pb"), rss_mb=_rss_mb(), wire=results.get("wire")
    )


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
    for name, p in (("wire", r.wire), ("model", r.model), ("pb", r.pb)):
        if p is None:
            continue
        if name == "wire":
            out.append(
                f"wire: {p.events_per_message:.0f} events per message on average; the consumer's filter "
                f"subjects leave out {p.filtered_share:.0%} of the mix (eBPF kinds no rule reads)"
            )
            out.append(
                f"wire: {1e6 / p.cpu_events_per_second if p.cpu_events_per_second else 0:.2f} us CPU per event "
                f"= {p.decoder_names()} (the 300,000 events/s target is 3.33 us)"
            )
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
        choices=("wire", "model", "pb", "all"),
        default="wire",
        help="wire: publisher-encoded batch messages -> decode_events -> process_pb (the production "
        "decode path, the headline figure); model: attrs Events in; pb: serialized protobuf Events, "
        "decoded one by one + process_pb; all (default: wire)",
    )
    p.add_argument(
        "--profile",
        default="",
        metavar="FILE",
        help="wire path only: cProfile (CPU timer) of the timed part into FILE, the top 25 printed",
    )
    p.add_argument(
        "--by-type",
        action="store_true",
        help="wire path only: CPU per event of each event type/action (a timer around each event, "
        "so the rates printed are lower than without)",
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="wire path only: the correlator's decode (views: decode_views -> process_view) and the "
        "protobuf one (decode_events -> process_pb), each on its own engine fed the same messages, "
        "interleaved chunk by chunk in one process (twice the memory)",
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
    print(f"bench: {_load()}", flush=True)
    if args.profile or args.by_type or args.compare:
        return _diagnose(args)
    paths = ("wire", "model", "pb") if args.path == "all" else (args.path,)
    result = run(args.seconds, args.pods, args.seed, paths)
    for line in describe(result):
        print(line)
    print(f"bench: {_load()}")
    print(result.line())
    return 0


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def _diagnose(args: argparse.Namespace) -> int:
    """The wire path once, under cProfile and/or with the per-type timer, or both decoders compared."""
    profile = cProfile.Profile(time.process_time) if args.profile else None
    by_type: dict[tuple[str, str], list[int]] | None = {} if args.by_type else None
    decoders = ("view", "pb") if args.compare else ("view",)
    wires = run_wire(args.seconds, args.pods, args.seed, profile=profile, by_type=by_type, decoders=decoders)
    for wire in wires:
        for line in describe(BenchResult(model=None, pb=None, rss_mb=_rss_mb(), wire=wire)):
            print(f"[{wire.decoder}] {line}")
    result = BenchResult(model=None, pb=None, rss_mb=_rss_mb(), wire=wires[0])
    if len(wires) > 1:
        view, pb = wires
        print(
            f"compare: views {1e6 / view.cpu_events_per_second:.2f} us CPU per event against protobuf "
            f"{1e6 / pb.cpu_events_per_second:.2f} (x{pb.cpu_events_per_second and view.cpu_events_per_second / pb.cpu_events_per_second:.2f} "
            f"events per CPU second); correlations found {view.correlations_medium_high} and "
            f"{pb.correlations_medium_high}"
        )
    if by_type is not None:
        for line in by_type_lines(by_type):
            print(line)
    if profile is not None:
        profile.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(25)
    print(f"bench: {_load()}")
    print(result.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
