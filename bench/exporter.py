"""SIEM exporter benchmark: correlations in, Splunk HEC (gzip, indexer acks) and Elasticsearch `_bulk` out.

Three processes on this machine besides the local nats-server (file store):
- the exporter, as `tapio-siem-exporter` runs it (its own process: consumer runtime, lifecycle,
  alerts published to TAPIO_ALERTS, one durable consumer per sink);
- the receivers (another process): the protocol-faithful HEC server (token, channel, gzip, ack
  endpoint polled by the sink) and `_bulk` server (per-item status, external versions);
- this process: the load generator, publishing correlations to tapio.correlations.> at --rate for
  --seconds (80% new incidents, 20% a second revision of a recent one: every one gives one alert).

Measured:
- alerts_per_second: alerts confirmed at BOTH receivers / wall time from the first correlation
  published to the last alert arrived (the smaller of the two receivers' counts);
- p99_alert_latency_ms: per alert, arrival time at the receiver - the correlation's `last_seen`
  (set to the wall clock when the load generator publishes it); the p99 over both receivers.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import anyio

from tapio.correlations.v1 import correlations_pb2
from tapio_common.config import NatsConfig
from tapio_common.nats.embedded import EmbeddedNats, free_port
from tapio_jetstream.streams import apply_layout
from tapio_publisher import Publisher, PublisherSettings

NS = 1_000_000_000
TOKEN = "bench-token"


def receivers_main(conn: Connection) -> None:
    from tapio_testing.receivers.bulk import BulkReceiver
    from tapio_testing.receivers.hec import HecReceiver

    hec = HecReceiver(token=TOKEN, ack=True, keep=False).start()
    es = BulkReceiver(keep=False).start()
    conn.send((hec.url, es.url))
    while True:
        cmd = conn.recv()
        if cmd == "counts":
            conn.send((hec.count, es.count, time.time()))
        elif cmd == "latencies":
            conn.send((list(hec.latencies_ms), list(es.latencies_ms)))
        else:
            hec.stop()
            es.stop()
            return


def exporter_main(argv: list[str]) -> None:
    from tapio_exporters.cli import main

    sys.exit(main(argv))


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


async def load(url: str, rate: float, seconds: float, spool: str) -> tuple[int, float]:
    """Publishes correlations at `rate` for `seconds`; returns (count, first publish wall time)."""
    base = template()
    settings = PublisherSettings.from_section({}, spool, batch_max_events=1, max_inflight=4096)
    sent = 0
    async with Publisher(settings, nats=NatsConfig(urls=(url,))) as pub:
        start = time.time()
        tick = 0.01
        receipts = []
        while (now := time.time()) - start < seconds:
            due = int((now - start) * rate) - sent
            for _ in range(max(0, due)):
                c = correlations_pb2.Correlation()
                c.CopyFrom(base)
                if sent % 5 == 4:  # a second revision of the incident begun 4 before
                    n, rev = sent - 4, 2
                else:
                    n, rev = sent, 1
                c.id = f"bench-{n}"
                c.revision = rev
                c.scope.workload.name = f"svc-{n % 500}"
                t = time.time_ns()
                c.first_seen.FromNanoseconds(t - NS)
                c.last_seen.FromNanoseconds(t)
                subject = "tapio.correlations.high.cascading_failure"
                receipts.append(
                    await pub.publish_message(subject, c.SerializeToString(), msg_id=f"{c.id}:{rev}")
                )
                sent += 1
            if len(receipts) > 20_000:
                for r in receipts:
                    await r.wait()
                receipts.clear()
            await anyio.sleep(tick)
        for r in receipts:
            await r.wait()
    return sent, start


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench/exporter.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--seconds", type=float, default=20.0, help="load duration (default 20)")
    ap.add_argument(
        "--rate", type=float, default=20_000.0, help="correlations per second offered (default 20000)"
    )
    ap.add_argument(
        "--batch", type=int, default=1000, help="alerts a sink delivery takes at most (default 1000)"
    )
    args = ap.parse_args()
    ctx = mp.get_context("fork")
    with tempfile.TemporaryDirectory(prefix="texp-bench-") as tmp:
        server = EmbeddedNats(Path(tmp) / "js", port=free_port(), server_name="bench").start()
        try:
            anyio.run(_provision, server.url)
            parent, child = ctx.Pipe()
            receivers = ctx.Process(target=receivers_main, args=(child,), daemon=True)
            receivers.start()
            hec_url, es_url = parent.recv()
            cfg = Path(tmp) / "exporter.yaml"
            cfg.write_text(
                "siem-exporter:\n"
                f"  fetch_batch: {args.batch}\n"
                "  idle_advance: 3600\n"
                "  sinks:\n"
                f"    - {{type: hec, url: '{hec_url}', token: {TOKEN}, ack: true, gzip: true, batch: {args.batch}}}\n"
                f"    - {{type: elastic, url: '{es_url}', index: tapio-alerts, batch: {args.batch}}}\n"
            )
            argv = ["--config", str(cfg), "--nats-url", server.url, "--metrics-port", "0", "--log-level", "warning",
                    "--data-dir", str(Path(tmp) / "exporter")]  # fmt: skip
            exporter = ctx.Process(target=exporter_main, args=(argv,), daemon=True)
            exporter.start()
            time.sleep(3.0)  # bound and restored (empty stream) before the load starts
            print(f"exporter benchmark: {args.rate:.0f} correlations/s offered for {args.seconds:.0f} s; "
                  f"sinks HEC (gzip, indexer acks) and _bulk, batches of {args.batch}", flush=True)  # fmt: skip
            sent, start = anyio.run(load, server.url, args.rate, args.seconds, str(Path(tmp) / "spool"))
            deadline = time.time() + 120
            last_arrival = time.time()
            got = (0, 0)
            prev = -1
            while time.time() < deadline:
                parent.send("counts")
                h, e, at = parent.recv()
                got = (h, e)
                if min(h, e) != prev:
                    prev, last_arrival = min(h, e), at
                if min(h, e) >= sent:
                    break
                time.sleep(0.2)
            parent.send("latencies")
            lat_h, lat_e = parent.recv()
            parent.send("stop")
            exporter.terminate()
            exporter.join(30)
            receivers.join(10)
        finally:
            server.stop()
    delivered = min(got)
    elapsed = last_arrival - start
    lat = sorted(lat_h + lat_e)
    p99 = lat[int(len(lat) * 0.99) - 1] if lat else float("nan")
    p50 = statistics.median(lat) if lat else float("nan")
    print(f"published {sent} correlations; HEC received {got[0]}, _bulk indexed {got[1]} "
          f"(each alert once expected: {sent}); {elapsed:.1f} s from first publish to last arrival")  # fmt: skip
    print(
        f"latency correlation last_seen -> receiver: p50 {p50:.0f} ms, p99 {p99:.0f} ms over {len(lat)} arrivals"
    )
    print(f"alerts_per_second={delivered / elapsed:.0f} p99_alert_latency_ms={p99:.0f}")
    return 0 if delivered >= sent else 1


async def _provision(url: str) -> None:
    import nats

    nc = await nats.connect(url)
    await apply_layout(nc.jetstream(), 1)
    await nc.close()


if __name__ == "__main__":
    sys.exit(main())
