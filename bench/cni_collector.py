"""CNI collector benchmark: a full netlink sample of 1,000 veth interfaces with traffic every second.

    bazel run //bench:cni_collector -- --seconds 20        (as root)

Makes two namespaces, `tcni-bench-node` (the collector samples it) and `tcni-bench-pods`, and
--interfaces veth pairs between them (host ends `tcni-bv<N>` in the node namespace). A separate
traffic process sends --pps Ethernet frames a second into every host end; the peers of 1 % of
the pairs are down, so their frames are dropped and reported (packet_loss, egress) every window.
The collector runs as in production: the harness with its publisher, on an embedded JetStream
(a separate nats-server process), --interval 1 s. After a warm-up sample, it measures for
--seconds: `sample_ms` = mean wall time of one full sample (RTM_GETSTATS + RTM_GETQDISC dumps,
decoding, deltas, thresholds), `cpu_percent` = CPU time of the collector process (all its
threads: sampler, event loop, publisher) / wall time, in % of one core. Traffic generation and
nats-server run in other processes and are not counted. Everything is deleted at the end.
Last line:

    interfaces=N sample_ms=N cpu_percent=N
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
from anyio.from_thread import start_blocking_portal

from tapio_collector.service import run_collector
from tapio_collector_cni.adapters.netlink import RouteSocket
from tapio_collector_cni.cli import SPEC
from tapio_collector_cni.settings import CniSettings
from tapio_collector_cni.source import CniSource
from tapio_common.config import CommonConfig

NODE, PODS = "tcni-bench-node", "tcni-bench-pods"
CLONE_NEWNET = 0x40000000
ETH_P_EXPERIMENTAL = 0x88B5


def sh(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, check=True, input=stdin, text=True)


def cleanup() -> None:
    for ns in (NODE, PODS):  # deleting a namespace deletes the veth pairs with an end in it
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL, check=False)


def setup(count: int, down_every: int) -> list[int]:
    cleanup()
    sh("ip", "netns", "add", NODE)
    sh("ip", "netns", "add", PODS)
    adds = "".join(f"link add tcni-bv{i} type veth peer name tcni-bp{i} netns {PODS}\n" for i in range(count))
    sh("ip", "-n", NODE, "-batch", "-", stdin=adds)
    sh("ip", "-n", NODE, "-batch", "-", stdin="".join(f"link set tcni-bv{i} up\n" for i in range(count)))
    down = [i for i in range(count) if i % down_every == 0]
    ups = "".join(f"link set tcni-bp{i} up\n" for i in range(count) if i % down_every)
    sh("ip", "-n", PODS, "-batch", "-", stdin=ups)
    return down


def traffic_child(count: int, pps: float) -> None:
    """Runs in its own process: frames into every host end, `pps` a second each, until killed."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{NODE}", os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise SystemExit(f"setns {NODE}: {os.strerror(ctypes.get_errno())}")
    socks = []
    for i in range(count):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((f"tcni-bv{i}", 0))
        socks.append(s)
    frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + ETH_P_EXPERIMENTAL.to_bytes(2, "big") + b"\0" * 46
    period = 1.0 / pps
    next_at = time.monotonic()
    failed = 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            for s in socks:
                try:
                    s.send(frame)
                except OSError:
                    failed += 1  # refused before reaching the device: not in its counters
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        print(f"traffic process: {failed} sends refused by the socket layer", file=sys.stderr)


def histogram(registry: Any, name: str) -> tuple[float, float]:
    total = count = 0.0
    for metric in registry.collect():
        for s in metric.samples:
            if s.name == f"{name}_sum":
                total = s.value
            elif s.name == f"{name}_count":
                count = s.value
    return total, count


def gauge(registry: Any, name: str) -> float:
    for metric in registry.collect():
        for s in metric.samples:
            if s.name == name:
                return float(s.value)
    return 0.0


def measure(args: argparse.Namespace, tmp: Path, down: list[int]) -> dict[str, float]:
    cfg = CommonConfig(
        node_name="tcni-bench", metrics_port=0, data_dir=str(tmp / "data"), log_level="warning"
    )
    settings = CniSettings(netns=NODE, interval=args.interval, cni_conf_dir=str(tmp / "net.d"))
    source = CniSource(settings)

    async def run(task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        await run_collector(SPEC, cfg, source, handle_signals=False, task_status=task_status)

    with start_blocking_portal() as portal:
        future, out = portal.start_task(run)
        try:
            while source.samples < 2:  # link inventory and baseline
                time.sleep(0.05)
            prefix = "tapio_cni_collector"
            s0, n0 = histogram(out.metrics.registry, f"{prefix}_sample_seconds")
            p0 = frames_sent()
            e0, cpu0, wall0 = out.emitted, time.process_time(), time.monotonic()
            time.sleep(args.seconds)
            s1, n1 = histogram(out.metrics.registry, f"{prefix}_sample_seconds")
            e1, cpu1, wall1 = out.emitted, time.process_time(), time.monotonic()
            p1 = frames_sent()
            interfaces = gauge(out.metrics.registry, f"{prefix}_interfaces")
        finally:
            future.cancel()
            with contextlib.suppress(concurrent.futures.CancelledError):
                future.result(timeout=30)  # the harness flushes and stops the embedded JetStream
    samples = n1 - n0
    return {
        "interfaces": interfaces,
        "samples": samples,
        "sample_ms": (s1 - s0) / samples * 1000 if samples else float("nan"),
        "cpu_percent": (cpu1 - cpu0) / (wall1 - wall0) * 100,
        "events": e1 - e0,
        "expected_events": len(down) * samples,
        "frames_per_second": (p1 - p0) / (wall1 - wall0),
    }


def frames_sent() -> int:
    """Frames the host ends sent or dropped (tx_packets + tx_dropped), read over netlink."""
    route = RouteSocket(f"/run/netns/{NODE}")
    try:
        stats: dict[int, Any] = {}
        route.stats(stats)
        return sum(s[1] + s[7] for s in stats.values())
    finally:
        route.close()


def decoding_costs(reps: int = 3) -> dict[str, float]:
    """CPU ms (median of `reps`) of one dump of the node namespace: pyroute2's generic message
    parser (`get_links`, what the collector does not use on its hot path) vs the collector's
    decoders (RTM_GETSTATS, RTM_GETQDISC each sample; RTM_GETLINK when interfaces change)."""
    from pyroute2 import NetNS

    def cpu_ms(fn: Any) -> float:
        runs = []
        for _ in range(reps):
            t = time.process_time()
            fn()
            runs.append((time.process_time() - t) * 1000)
        return sorted(runs)[len(runs) // 2]

    route = RouteSocket(f"/run/netns/{NODE}")
    ipr = NetNS(NODE)
    try:
        into: dict[int, Any] = {}
        return {
            "pyroute2_get_links": cpu_ms(ipr.get_links),
            "stats": cpu_ms(lambda: route.stats(into)),
            "qdiscs": cpu_ms(lambda: route.qdiscs(into)),
            "links": cpu_ms(lambda: route.links(into)),
        }
    finally:
        ipr.close()
        route.close()


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/cni_collector.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds (default 20)")
    p.add_argument("--interfaces", type=int, default=1000, help="veth pairs (default 1000)")
    p.add_argument("--interval", type=float, default=1.0, help="collector sampling interval, s (default 1)")
    p.add_argument("--pps", type=float, default=20.0, help="frames a second into each interface (default 20)")
    p.add_argument(
        "--down-every", type=int, default=100, help="every Nth pair has its peer down (default 100)"
    )
    p.add_argument("--traffic-child", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.traffic_child:
        traffic_child(args.interfaces, args.pps)
        return 0
    if os.geteuid() != 0:
        print("bench/cni_collector.py: needs root (network namespaces, veth)", file=sys.stderr)
        return 2
    traffic: subprocess.Popen[bytes] | None = None
    try:
        t0 = time.monotonic()
        down = setup(args.interfaces, args.down_every)
        print(
            f"setup: {args.interfaces} veth pairs in {time.monotonic() - t0:.1f} s ({len(down)} with the peer down)"
        )
        child = [sys.executable, os.path.abspath(__file__), "--traffic-child"]
        child += ["--interfaces", str(args.interfaces), "--pps", str(args.pps)]
        traffic = subprocess.Popen(child, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        time.sleep(1.0)
        print(
            f"measuring {args.seconds:.0f} s: interval {args.interval} s, {args.pps:g} frames/s into each "
            "interface from another process, collector in the harness on an embedded JetStream"
        )
        with tempfile.TemporaryDirectory(prefix="tcni-bench-") as tmp:
            r = measure(args, Path(tmp), down)
        c = decoding_costs()
        traffic.terminate()  # its own report goes out before the result lines
        traffic.wait()
        traffic = None
        print(
            f"one dump of {r['interfaces']:.0f} links, CPU ms: pyroute2 get_links {c['pyroute2_get_links']:.0f}; "
            f"collector RTM_GETSTATS {c['stats']:.1f} + RTM_GETQDISC {c['qdiscs']:.1f} per sample, "
            f"RTM_GETLINK {c['links']:.1f} when interfaces change"
        )
        print(
            f"traffic: {r['frames_per_second']:.0f} frames/s through the host ends; samples={r['samples']:.0f} "
            f"events={r['events']} (about {r['expected_events']:.0f} expected: one packet_loss per down peer per window)"
        )
        print(
            f"interfaces={r['interfaces']:.0f} sample_ms={r['sample_ms']:.1f} cpu_percent={r['cpu_percent']:.1f}"
        )
        return 0
    finally:
        if traffic is not None:
            traffic.terminate()
            traffic.wait()
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
