"""Kubernetes collector benchmark: the real collector process (its CLI, the official client,
the harness and publisher) against the test API server and a real JetStream.

    bazel run //bench:k8s_collector -- --seconds 20

The API server (a thread server in this process) holds --pods realistic pods on the collector's
node; the collector lists them (pages of 500 with continue) and publishes a `created` event each,
then watches: the server streams pod restarts as fast as the collector reads them, each giving
one `restarted` event. Events count once JetStream acknowledged them (the collector's
`events_published_total`). Last line:
list_pods_per_second=N watch_events_per_second=N rss_mb=N cpu_percent=N
(list: pods over the time from the first list request to the last created event acknowledged;
watch: acknowledged events per second over --seconds after a 2 s warm-up; rss_mb: peak RSS of
the collector process; cpu_percent: its CPU time over the watch window, 100 = one core)."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import anyio
import nats
import psutil
from k8s_collector_feed import NODE, Feed

from tapio_collector_k8s.domain.digest import digest
from tapio_common.nats.embedded import EmbeddedNats, free_port
from tapio_jetstream.streams import apply_layout
from tapio_testing.k8s_api import K8sApiServer

PUBLISHED = re.compile(rb"^tapio_k8s_collector_events_published_total ([0-9.e+]+)$", re.M)


def published(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            m = PUBLISHED.search(r.read())
    except OSError:
        return 0
    return int(float(m.group(1))) if m else 0


def model_cost(api: K8sApiServer) -> str:
    """The client's model deserialisation vs the collector's raw JSON path, on one 500-pod page."""
    from kubernetes import client

    _, page, _, _ = api.store.list("pods", "", [], 500, "")
    body = (
        b'{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":['
        + b",".join(s.data for s in page)
        + b"]}"
    )
    text = body.decode()
    t = time.perf_counter()
    client.ApiClient().deserialize(text, "V1PodList", "application/json")
    models = (time.perf_counter() - t) / len(page) * 1e6
    t = time.perf_counter()
    for item in json.loads(body)["items"]:
        digest("pods", item)
    raw = (time.perf_counter() - t) / len(page) * 1e6
    return f"client models (ApiClient.deserialize V1PodList): {models:.0f} us/pod; raw json.loads + digest: {raw:.0f} us/pod ({models / raw:.1f}x)"


class Sampler(threading.Thread):
    def __init__(self, proc: psutil.Process) -> None:
        super().__init__(daemon=True)
        self.proc, self.peak, self.stop = proc, 0, False

    def run(self) -> None:
        while not self.stop:
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.2)


async def provision(url: str) -> None:
    nc = await nats.connect(url)
    try:
        await apply_layout(nc.jetstream(), 1)
    finally:
        await nc.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--seconds", type=float, default=20.0, help="timed seconds of the watch phase (default 20)"
    )
    p.add_argument("--pods", type=int, default=100_000, help="pods in the initial list (default 100000)")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="tk8s-bench-"))
    feed = Feed(args.pods)
    api = K8sApiServer(token="bench-token", bookmark_interval=5.0).start()
    t = time.perf_counter()
    feed.load(api)
    print(f"api server: {args.pods} pods on {NODE}, {feed.pod_bytes / args.pods:.0f} B of JSON each "
          f"({feed.pod_bytes / 1e6:.0f} MB), loaded in {time.perf_counter() - t:.1f} s", flush=True)  # fmt: skip
    print(model_cost(api), flush=True)
    server = EmbeddedNats(tmp / "jetstream").start()
    anyio.run(provision, server.url)
    port = free_port()
    kc = api.kubeconfig(tmp / "kubeconfig.json")
    cmd = [sys.executable, "-m", "tapio_collector_k8s", "--kubeconfig", str(kc), "--node-name", NODE,
           "--nats-url", server.url, "--metrics-port", str(port), "--data-dir", str(tmp / "data"),
           "--log-level", "warning", "--checkpoint-interval", "10"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    ps = psutil.Process(proc.pid)
    sampler = Sampler(ps)
    sampler.start()
    try:
        deadline = time.monotonic() + 300
        while published(port) < args.pods:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"collector exited ({proc.returncode}) or stalled before listing everything")
            time.sleep(0.1)
        listed_at = time.monotonic()
        first = next(
            t for (_, path), t in zip(api.requests, api.request_times, strict=True) if "/pods?" in path
        )
        list_s = listed_at - first
        print(f"list: {args.pods} pods listed, derived and acknowledged in {list_s:.1f} s "
              f"({sum('/pods?' in path and 'watch' not in path for _, path in api.requests)} pages)", flush=True)  # fmt: skip
        while feed.watch_started is None:
            time.sleep(0.05)
        time.sleep(2.0)
        c1, t1, cpu1 = published(port), time.monotonic(), sum(ps.cpu_times()[:2])
        served1 = feed.watch_served
        time.sleep(args.seconds)
        c2, t2, cpu2 = published(port), time.monotonic(), sum(ps.cpu_times()[:2])
        served2 = feed.watch_served
    finally:
        sampler.stop = True
        proc.terminate()
        code = proc.wait(60)
        server.stop()
        api.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    watch_rate = (c2 - c1) / (t2 - t1)
    cpu = (cpu2 - cpu1) / (t2 - t1) * 100
    rss_mb = sampler.peak / 2**20
    print(f"watch: {c2 - c1} restarted events acknowledged in {t2 - t1:.1f} s ({(served2 - served1) / (t2 - t1):.0f} "
          f"watch events/s written by the server); collector exit code on SIGTERM {code}", flush=True)  # fmt: skip
    print(f"list_pods_per_second={args.pods / list_s:.0f} watch_events_per_second={watch_rate:.0f} "
          f"rss_mb={rss_mb:.0f} cpu_percent={cpu:.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
