"""SIEM exporter benchmark: correlations in, Splunk HEC (gzip, indexer acks) and Elasticsearch `_bulk` out.

Three processes on this machine besides the local nats-server (file store):
- the exporter, as `tapio-siem-exporter` runs it (its own process: consumer runtime, lifecycle,
  alerts stored in TAPIO_ALERTS, then handed to both sinks from memory; `--read-back`: each sink
  reads them back through its own durable consumer instead, the shape before);
- the receivers (another process): the protocol-faithful HEC server (token, channel, gzip, ack
  endpoint polled by the sink) and `_bulk` server (per-item status, external versions);
- this process: the load generator, publishing correlations to tapio.correlations.> at --rate for
  --seconds (80% new incidents, 20% a second revision of a recent one: every one gives one alert).

Measured, in two steps:
- the capacity: a burst of correlations offered at --rate (--probe seconds, at most --probe-max),
  and how long until every alert of it is at both receivers: alerts/s the exporter drains;
- then a sustained load at --sustain (80%) of that capacity for --seconds (or --sustained-rate N
  without the probe), with other incidents. Its figures:
  - alerts_per_second (held): alerts of the load confirmed at BOTH receivers while the load ran
    (the smaller count of the two) / the load's seconds, beside the offered rate and the backlog
    left when it ended (held ~ offered and a small backlog: it keeps up);
  - p99_alert_latency_ms: per alert of the load, arrival time at the receiver - the correlation's
    `last_seen` (the wall clock when the load generator published it), over both receivers and
    every alert of the load (its drain included); "during the load" counts only those that arrived
    while the load ran;
  - CPU seconds per alert of each process (exporter, receivers, nats-server, load generator) during
    the sustained load and its drain, and the load average: on a shared machine the rates are a
    lower bound; the CPU per alert is the stable measure.

`--receivers-only`: the receivers alone (HEC gzip + acks, _bulk), fed pre-encoded batches as fast
as two clients can send them, to show they are not what limits the exporter's figure.
`--profile FILE`: the exporter runs under cProfile and writes its stats to FILE on exit
(`python -m pstats FILE`), and the bench prints the exporter's CPU per alert by stage from it;
profiling slows it several fold (small functions most), so read the stages as shares.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

import anyio
import psutil
from cpu_budget import CpuBudget, Rule, in_files, loadavg_text, named, profile_stages, spread

from tapio.correlations.v1 import correlations_pb2
from tapio_common.config import NatsConfig
from tapio_common.nats.embedded import EmbeddedNats, free_port
from tapio_jetstream.streams import apply_layout
from tapio_publisher import Publisher, PublisherSettings

NS = 1_000_000_000
TOKEN = "bench-token"


def receiver_main(conn: Connection, kind: str) -> None:
    """One receiver in its own process (HEC or _bulk: they parse JSON in parallel on two cores)."""
    from tapio_testing.receivers.bulk import BulkReceiver
    from tapio_testing.receivers.hec import HecReceiver

    server = HecReceiver(token=TOKEN, ack=True, keep=False) if kind == "hec" else BulkReceiver(keep=False)
    server.start()
    conn.send(server.url)
    while True:
        cmd = conn.recv()
        if cmd == "counts":
            conn.send((server.count, len(server.latencies_ms), time.time()))
        elif cmd == "latencies":
            conn.send(list(server.latencies_ms))
        else:
            server.stop()
            return


class Receivers:
    """The HEC and _bulk receiver processes."""

    def __init__(self, ctx: mp.context.ForkContext) -> None:
        self.pipes: list[Connection] = []
        self.procs: list[mp.process.BaseProcess] = []
        self.urls: list[str] = []
        for kind in ("hec", "bulk"):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=receiver_main, args=(child, kind), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
            self.urls.append(parent.recv())

    def counts(self) -> tuple[int, int, int, float]:
        """(alerts at both, HEC latencies recorded, _bulk latencies recorded, time)."""
        replies = []
        for pipe in self.pipes:
            pipe.send("counts")
            replies.append(pipe.recv())
        (h, lh, _), (e, le, at) = replies
        return min(h, e), lh, le, at

    def latencies(self) -> list[list[float]]:
        out = []
        for pipe in self.pipes:
            pipe.send("latencies")
            out.append(pipe.recv())
        return out

    def stop(self) -> None:
        for pipe, proc in zip(self.pipes, self.procs, strict=True):
            pipe.send("stop")
            proc.join(10)


def exporter_main(argv: list[str], profile: str) -> None:
    from tapio_exporters.cli import main

    if not profile:
        sys.exit(main(argv))
    import cProfile

    prof = cProfile.Profile(time.process_time)  # CPU time: a loaded machine does not inflate it
    prof.enable()
    try:
        rc = main(argv)
    finally:
        prof.disable()
        prof.dump_stats(profile)
    sys.exit(rc)


def template() -> correlations_pb2.Correlation:
    c = correlations_pb2.Correlation(
        type="cascading_failure",
        confidence=correlations_pb2.CONFIDENCE_HIGH,
        score=0.92,
        root_cause_event_id="ev-root",
        event_ids=[f"ev-{i}" for i in range(8)],
        summary="checkout fails after its database pod was OOM killed on node-7",
    )
    c.scope.namespace = "shop"
    c.scope.node = "node-7"
    c.scope.workload.kind = "Deployment"
    for rel in ("caused", "followed", "same_owner", "selected_by_service"):
        c.evidence.add(event_id="ev-1", relation=rel, weight=0.5)
    return c


async def load(url: str, rate: float, seconds: float, spool: str, first: int = 0) -> tuple[int, float, float]:
    """Publishes correlations at `rate` for `seconds` (incident numbers from `first`) as the
    correlator does: each its own message with `Nats-Msg-Id` = id:revision, through the publisher
    (pipelined in its ack window; `publish_messages`: those due at each 20 ms tick handed over in one
    call, no Receipt each: `flush` awaits every ack before it returns). One Correlation message is reused (only id,
    revision, workload and times change: no copy of the template per correlation). Returns (count,
    first publish, last publish)."""
    c = template()
    settings = PublisherSettings.from_section({}, spool, batch_max_events=1, max_inflight=4096)
    subject = "tapio.correlations.high.cascading_failure"
    sent = 0
    async with Publisher(settings, nats=NatsConfig(urls=(url,))) as pub:
        start = time.time()
        tick = 0.02  # the correlator lingers 20 ms over a batch before it publishes (batch_linger)
        while (now := time.time()) - start < seconds:
            due = int((now - start) * rate) - sent
            batch: list[tuple[str, bytes, str]] = []
            for _ in range(max(0, due)):
                if sent % 5 == 4:  # a second revision of the incident begun 4 before
                    n, rev = first + sent - 4, 2
                else:
                    n, rev = first + sent, 1
                cid = c.id = f"bench-{n}"
                c.revision = rev
                c.scope.workload.name = f"svc-{n % 500}"
                t = time.time_ns()
                c.first_seen.seconds, c.first_seen.nanos = divmod(t - NS, NS)
                c.last_seen.seconds, c.last_seen.nanos = divmod(t, NS)
                batch.append((subject, c.SerializeToString(), f"{cid}:{rev}"))
                sent += 1
            if batch:
                await pub.publish_messages(batch, receipts=False)
            await anyio.sleep(tick)
        end = time.time()
        with anyio.fail_after(120):
            await (
                pub.flush()
            )  # every correlation stored (a dropped one is an ERROR line; the count checks it)
    return sent, start, end


class Sampler(threading.Thread):
    """Polls the receivers' counts every 0.2 s (the only user of the pipe until `stop`)."""

    def __init__(self, receivers: Receivers) -> None:
        super().__init__(daemon=True)
        self.receivers = receivers
        self.samples: list[tuple[float, int, int, int]] = []  # (time, both, hec latencies, es latencies)
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            both, lh, le, at = self.receivers.counts()
            self.samples.append((at, both, lh, le))
            self.halt.wait(0.2)

    def at(self, when: float) -> tuple[float, int, int, int]:
        """The last sample taken at or before `when`."""
        best = self.samples[0]
        for s in self.samples:
            if s[0] <= when:
                best = s
        return best

    def stop(self) -> None:
        self.halt.set()
        self.join()


# The exporter's stages in a cProfile dump (own time of each function; a built-in's goes to its
# callers). The NATS client's reads, header parse, the runtime's per-message work and the NATS
# client's writes serve several message kinds: they are shared out by messages per alert (in: the
# correlation + one delivery per sink; header lines: 1 on a correlation, 3 on a stored alert; out:
# the alert + the correlation's ack + one ack per sink).
EXPORTER_RULES: list[Rule] = [
    ("correlation read", named("decode.py", "decode_correlation")),
    ("correlation read", named("model/fast.py", "correlation_from_pb", "context_from_pb", "evidence")),
    ("correlation read", named("delivery.py", "_correlation_keys")),
    ("sink read-back", named("decode.py", "decode_alert")),
    ("sink read-back", named("model/fast.py", "alert_from_pb")),
    ("sink read-back", named("delivery.py", "_alert_keys")),
    ("sink read-back", in_files("tapio_exporters/service/delivery.py", "tapio_exporters/service/lanes.py",
                                "tapio_jetstream/readback.py")),
    ("publish", named("model/fast.py", "alert_to_pb")),
    ("publish", named("~", "SerializeToString")),
    ("publish", in_files("tapio_publisher/", "tapio_exporters/service/alerter.py")),
    ("alert build (lifecycle, models)", in_files("tapio_exporters/domain/", "tapio_common/model/", "<attrs generated")),
    ("encode (HEC JSON, ECS)", in_files("tapio_exporters/encoders/", "json/encoder.py", "json/__init__.py")),
    ("HTTP + gzip + acks polling", in_files("httpx/", "httpcore/", "h11/", "gzip.py", "tapio_exporters/sinks/",
                                            "json/decoder.py", "zlib")),
    ("HTTP + gzip + acks polling", named("~", "zlib", "compress")),
    ("acks (runtime)", named("tapio_jetstream/consumer.py", "_ack", "_flush_acks", "_settle")),
    ("acks (runtime)", named("nats/aio/msg.py", "ack")),
    ("nats in", named("nats/aio/client.py", "_process_msg", "_build_message", "_read_loop", "_is_control_message")),
    ("nats in", in_files("nats/protocol/parser.py", "nats/aio/subscription.py", "asyncio/queues.py")),
    ("nats headers", named("nats/aio/client.py", "_parse_header_lines", "genexpr", "_process_headers")),
    ("nats out", named("nats/aio/client.py", "publish", "_send_publish", "_send_command", "_flush",
                       "_validate_subject")),
    ("nats out", in_files("nats/protocol/command.py")),
    ("runtime per message", in_files("tapio_jetstream/")),
]  # fmt: skip


def print_stages(stats_file: str, exporter_us: float, sinks: int) -> None:
    """The exporter's CPU per alert by stage, from its cProfile dump, scaled to its measured CPU;
    `sinks`: how many sink consumers read each alert back (0: delivered from memory)."""
    raw = profile_stages(stats_file, EXPORTER_RULES, other="event loop, metrics, other")
    shared = ("nats in", "nats headers", "nats out", "runtime per message")
    stages = {k: v for k, v in raw.items() if k not in shared}
    per_in = {"correlation read": 1.0, "sink read-back": float(sinks)}
    # header lines: a correlation carries Nats-Msg-Id; a stored alert also the atomic batch's two
    per_header = {"correlation read": 1.0, "sink read-back": 3.0 * sinks}
    for part in (spread(raw["nats in"], per_in), spread(raw["runtime per message"], per_in),
                 spread(raw["nats headers"], per_header),
                 spread(raw["nats out"], {"publish": 1.0, "acks (runtime)": 1.0 + sinks})):  # fmt: skip
        for k, v in part.items():
            stages[k] = stages.get(k, 0.0) + v
    total = sum(stages.values()) or 1.0
    print(f"exporter CPU by stage (cProfile, CPU timer; the NATS client's reads, writes and the runtime's "
          f"per-message work shared out by messages: in 1 correlation + {sinks} sink read-backs, out 1 alert "
          f"+ {1 + sinks} acks an alert; scaled to the {exporter_us:.0f} us measured under the profiler):")  # fmt: skip
    for name, sec in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {name:34s} {sec / total:6.1%}  {sec / total * exporter_us:6.0f} us an alert")


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[max(0, int(len(s) * q) - 1)]


def run_exporter_bench(args: argparse.Namespace) -> int:
    ctx = mp.get_context("fork")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="texp-bench-") as tmp:
        server = EmbeddedNats(Path(tmp) / "js", port=free_port(), server_name="bench").start()
        try:
            anyio.run(_provision, server.url)
            receivers = Receivers(ctx)
            hec_url, es_url = receivers.urls
            cfg = Path(tmp) / "exporter.yaml"
            cfg.write_text(
                "siem-exporter:\n"
                f"  fetch_batch: {args.batch}\n"
                "  idle_advance: 3600\n"
                "  sinks:\n"
                f"    - {{type: hec, url: '{hec_url}', token: {TOKEN}, ack: true, gzip: true, batch: {args.batch}}}\n"
                f"    - {{type: elastic, url: '{es_url}', index: tapio-alerts, batch: {args.batch}}}\n"
                f"  sink_read_back: {'true' if args.read_back else 'false'}\n"
                + (f"  linger: {args.linger}\n" if args.linger is not None else "")
            )
            argv = ["--config", str(cfg), "--nats-url", server.url, "--metrics-port", "0", "--log-level", "warning",
                    "--data-dir", str(Path(tmp) / "exporter")]  # fmt: skip
            exporter = ctx.Process(target=exporter_main, args=(argv, args.profile), daemon=True)
            exporter.start()
            time.sleep(3.0)  # bound and restored (empty stream) before the load starts
            budget = CpuBudget({
                "exporter": psutil.Process(exporter.pid),
                "HEC receiver": psutil.Process(receivers.procs[0].pid),
                "_bulk receiver": psutil.Process(receivers.procs[1].pid),
                "nats-server": psutil.Process(server.proc.pid) if server.proc else psutil.Process(),
                "load generator": psutil.Process(),
            })  # fmt: skip
            print(f"exporter benchmark: the capacity (a burst offered at {args.rate:.0f}/s), then a sustained load for {args.seconds:.0f} s; "
                  f"sinks HEC (gzip, indexer acks) and _bulk, batches of {args.batch}, "
                  f"{'read back from TAPIO_ALERTS' if args.read_back else 'delivered from memory'}; "
                  f"before: load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", flush=True)  # fmt: skip
            sampler = Sampler(receivers)
            sampler.start()
            url, spool = server.url, str(Path(tmp) / "spool")
            rate = args.sustained_rate
            probe = None
            if not rate:  # the capacity: a burst offered at --rate, and how fast it drains
                count = int(min(args.rate * args.probe, args.probe_max))
                sent, p_start, _ = anyio.run(load, url, args.rate, count / args.rate, spool, 0)
                drained = wait_for(sampler, sent, args.drain)
                probe = (sent, drained - p_start)
                rate = args.sustain * sent / max(drained - p_start, 1e-9)
                print(f"capacity probe: {sent} correlations offered at {args.rate:.0f}/s, all at both receivers "
                      f"after {drained - p_start:.1f} s: {sent / (drained - p_start):.0f} alerts/s; "
                      f"sustained load at {args.sustain:.0%} of it: {rate:.0f}/s", flush=True)  # fmt: skip
            while not sampler.samples:
                time.sleep(0.05)
            base_sample = sampler.samples[-1]  # what arrived before the sustained load
            budget.start()
            first = 10_000_000  # other incidents than the probe's
            sent, start, end = anyio.run(load, url, rate, args.seconds, spool, first)
            load_after = os.getloadavg()
            last_arrival = wait_for(sampler, base_sample[1] + sent, args.drain)
            sampler.stop()
            budget.stop()
            lat_h, lat_e = receivers.latencies()
            receivers.stop()
            exporter.terminate()
            exporter.join(60)
        finally:
            server.stop()
    samples = sampler.samples
    delivered = samples[-1][1] - base_sample[1]
    elapsed = max(last_arrival - start, 1e-9)
    at_end = sampler.at(end)
    held = (at_end[1] - base_sample[1]) / (end - start)
    during = lat_h[base_sample[2] : at_end[2]] + lat_e[base_sample[3] : at_end[3]]
    everything = lat_h[base_sample[2] :] + lat_e[base_sample[3] :]
    print(f"sustained load: published {sent} correlations in {end - start:.1f} s ({sent / (end - start):.0f}/s); "
          f"at both receivers {delivered} (each alert once expected: {sent}); "
          f"{elapsed:.1f} s from first publish to last arrival")  # fmt: skip
    print(f"held during the load: {held:.0f} alerts/s of {sent / (end - start):.0f} offered; "
          f"backlog when the load ended: {sent - (at_end[1] - base_sample[1])} alerts")  # fmt: skip
    print(f"latency correlation published -> receiver: during the load p50 {p(during, 0.5):.0f} ms, "
          f"p99 {p(during, 0.99):.0f} ms ({len(during)} arrivals); every alert of the load p50 "
          f"{statistics.median(everything) if everything else float('nan'):.0f} ms, "
          f"p99 {p(everything, 0.99):.0f} ms ({len(everything)} arrivals)")  # fmt: skip
    per_alert = budget.per_unit_us(delivered)
    print(budget.report(delivered, "alert") + f" (after the load {load_after[0]:.2f})")
    # What the machine holds whatever the exporter does: every part but the exporter at its measured
    # cost (nats-server's share includes the exporter's own traffic: delivery, acks, alert publish).
    beside = budget.total_us(delivered) - per_alert["exporter"]
    cores = os.cpu_count() or 1
    ceiling = cores * 1e6 / beside if beside > 0 else float("nan")
    print(f"beside the exporter (load generator, nats-server, receivers): {beside:.0f} us an alert: with a "
          f"zero-cost exporter {cores} cores hold at most {ceiling:.0f} alerts/s")  # fmt: skip
    if args.profile:
        print_stages(args.profile, per_alert["exporter"], sinks=2 if args.read_back else 0)
    capacity = f"capacity_per_second={probe[0] / probe[1]:.0f} " if probe else ""
    print(
        f"alerts_per_second={held:.0f} p99_alert_latency_ms={p(everything, 0.99):.0f} "
        f"offered_per_second={sent / (end - start):.0f} {capacity}p99_during_load_ms={p(during, 0.99):.0f} "
        f"exporter_cpu_us_per_alert={per_alert['exporter']:.0f} nats_cpu_us_per_alert={per_alert['nats-server']:.0f} "
        f"total_cpu_us_per_alert={budget.total_us(delivered):.0f} beside_exporter_cpu_us_per_alert={beside:.0f} "
        f"zero_cost_exporter_ceiling_per_second={ceiling:.0f} loadavg_1m={load_after[0]:.2f}"
    )
    return 0 if delivered >= sent else 1


def wait_for(sampler: Sampler, count: int, seconds: float) -> float:
    """Waits (at most `seconds`) until `count` alerts are at both receivers; when that was seen."""
    deadline = time.time() + seconds
    while time.time() < deadline and (not sampler.samples or sampler.samples[-1][1] < count):
        time.sleep(0.2)
    return next((s[0] for s in sampler.samples if s[1] >= count), time.time())


def run_receivers_only(args: argparse.Namespace) -> int:
    """The receivers alone: two clients (HEC, _bulk) post pre-encoded batches for --seconds."""
    import httpx

    from tapio_common.model import AlertState
    from tapio_common.model.fast import correlation_from_pb
    from tapio_exporters.domain.alerts import AlertTemplate, build_alert
    from tapio_exporters.encoders.ecs import bulk_body
    from tapio_exporters.encoders.hec import HecOptions, hec_batch

    ctx = mp.get_context("fork")
    receivers = Receivers(ctx)
    hec_url, es_url = receivers.urls
    corr = template()
    alerts = []
    for n in range(args.batch):
        corr.id = f"bench-{n}"
        corr.last_seen.FromNanoseconds(time.time_ns())
        alerts.append(build_alert(correlation_from_pb(corr), AlertState.FIRING, AlertTemplate()))
    hec_body = gzip.compress(hec_batch(alerts, HecOptions()), compresslevel=1)
    es_body = bulk_body(alerts, "tapio-alerts")
    budget = CpuBudget({"HEC receiver": receivers.procs[0].pid, "_bulk receiver": receivers.procs[1].pid})
    counts = {"hec": 0, "elastic": 0}
    stop_at = time.monotonic() + args.seconds

    def hec_client() -> None:
        headers = {"Authorization": f"Splunk {TOKEN}", "X-Splunk-Request-Channel": "0f5ba4b4-8d7e-4a64-9c3d-2b1f4f9b3a10",
                   "Content-Encoding": "gzip"}  # fmt: skip
        with httpx.Client() as client:
            while time.monotonic() < stop_at:
                r = client.post(f"{hec_url}/services/collector/event", content=hec_body, headers=headers)
                ack = r.json()["ackId"]
                client.post(f"{hec_url}/services/collector/ack", content=json.dumps({"acks": [ack]}),
                            headers=headers)  # fmt: skip
                counts["hec"] += len(alerts)

    def es_client() -> None:
        with httpx.Client() as client:
            while time.monotonic() < stop_at:
                client.post(
                    f"{es_url}/_bulk", content=es_body, headers={"Content-Type": "application/x-ndjson"}
                )
                counts["elastic"] += len(alerts)

    budget.start()
    started = time.monotonic()
    threads = [threading.Thread(target=hec_client), threading.Thread(target=es_client)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    used = list(budget.stop().values())
    receivers.stop()
    print(f"receivers alone for {took:.1f} s, batches of {len(alerts)}: HEC {counts['hec'] / took:.0f} alerts/s "
          f"({used[0] / max(counts['hec'], 1) * 1e6:.1f} us CPU an alert), _bulk {counts['elastic'] / took:.0f} "
          f"alerts/s ({used[1] / max(counts['elastic'], 1) * 1e6:.1f} us); {loadavg_text()}")  # fmt: skip
    print(
        f"hec_alerts_per_second={counts['hec'] / took:.0f} bulk_alerts_per_second={counts['elastic'] / took:.0f}"
    )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench/exporter.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--seconds", type=float, default=20.0, help="load duration (default 20)")
    ap.add_argument(
        "--rate",
        type=float,
        default=20_000.0,
        help="correlations per second of the capacity probe (default 20000)",
    )
    ap.add_argument("--probe", type=float, default=3.0, help="seconds of the capacity probe (default 3)")
    ap.add_argument(
        "--probe-max",
        type=int,
        default=20_000,
        help="correlations of the capacity probe at most (default 20000)",
    )
    ap.add_argument(
        "--sustain",
        type=float,
        default=0.8,
        help="the sustained load as a fraction of the capacity (default 0.8)",
    )
    ap.add_argument(
        "--sustained-rate", type=float, default=0.0, metavar="N",
        help="offer N correlations/s for --seconds, without a capacity probe",
    )  # fmt: skip
    ap.add_argument(
        "--batch", type=int, default=1000, help="alerts a sink delivery takes at most (default 1000)"
    )
    ap.add_argument(
        "--drain",
        type=float,
        default=120.0,
        help="seconds to wait for the backlog after the load (default 120)",
    )
    ap.add_argument(
        "--profile", default="", metavar="FILE", help="run the exporter under cProfile, stats to FILE"
    )
    ap.add_argument(
        "--read-back", action="store_true",
        help="the sinks read every alert back through their durable consumers (the shape before session 4)",
    )  # fmt: skip
    ap.add_argument(
        "--linger", type=float, default=None, metavar="SECONDS",
        help="the exporter's `linger` (a batch waits that long for more after its first; default: the exporter's)",
    )  # fmt: skip
    ap.add_argument("--receivers-only", action="store_true", help="measure the receivers alone")
    args = ap.parse_args()
    if args.receivers_only:
        return run_receivers_only(args)
    return run_exporter_bench(args)


async def _provision(url: str) -> None:
    import nats

    nc = await nats.connect(url)
    await apply_layout(nc.jetstream(), 1)
    await nc.close()


if __name__ == "__main__":
    sys.exit(main())
