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
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import nats
import psutil
from k8s_collector_feed import NODE, Feed

from tapio_collector_k8s.domain import decode
from tapio_collector_k8s.domain.digest import digest
from tapio_common.nats.embedded import EmbeddedNats, free_port
from tapio_jetstream.streams import apply_layout
from tapio_testing.k8s_api import K8sApiServer

PUBLISHED = re.compile(rb"^tapio_k8s_collector_events_published_total ([0-9.e+]+)$", re.M)


def load() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def published(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            m = PUBLISHED.search(r.read())
    except OSError:
        return 0
    return int(float(m.group(1))) if m else 0


def model_cost(api: K8sApiServer) -> str:
    """Per pod of one 500-pod page: the client's models, json.loads + digest (the collector before
    msgspec), and the collector's decoder (typed msgspec of only the fields read, with the digest)."""
    from kubernetes import client

    _, page, _, _ = api.store.list("pods", "", [], 500, "")
    body = (
        b'{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":['
        + b",".join(s.data for s in page)
        + b"]}"
    )
    t = time.perf_counter()
    client.ApiClient().deserialize(body.decode(), "V1PodList", "application/json")
    models = (time.perf_counter() - t) / len(page) * 1e6
    t = time.perf_counter()
    for item in json.loads(body)["items"]:
        digest("pods", item)
    loads = (time.perf_counter() - t) / len(page) * 1e6
    t = time.perf_counter()
    decode.list_page("pods", body)
    typed = (time.perf_counter() - t) / len(page) * 1e6
    return (
        f"decoding one pod: client models (ApiClient.deserialize) {models:.0f} us; json.loads + digest "
        f"{loads:.0f} us; the collector's typed decode + digest {typed:.0f} us"
    )


def watch_lines(feed: Feed, n: int) -> tuple[list[bytes], list[Any]]:
    """n of the benchmark's restarted-pod watch lines and the digests the collector held before."""
    lines: list[bytes] = []
    chunks = feed.storm(1000)
    while len(lines) < n:
        lines += [ln for ln in next(chunks).split(b"\n") if ln]
    old = [decode.watch_line("pods", b'{"type":"ADDED","object":' + feed.listed_pod(i) + b"}", 1 << 20)[1]
           for i in range(n)]  # fmt: skip
    feed.watch_started, feed.watch_served = None, 0
    return lines[:n], old


def steps(hand: bool, lines: list[bytes], old: list[Any]) -> list[tuple[str, float]]:
    """CPU us per watch event of each in-process step of the watch path: decode (msgspec +
    digest), actions, then either the collector's path (`hand`: the pod event encoded by hand,
    build.pod_wire, and its subject) or the message path it replaced (build: protobuf message,
    then subject + SerializeToString), and batch + compress (the publisher's Encoder)."""
    from tapio_collector_k8s.domain.actions import changes
    from tapio_collector_k8s.domain.build import build, pod_wire
    from tapio_publisher.encoder import Encoder, group_by_subject
    from tapio_publisher.ids import IdGenerator
    from tapio_publisher.settings import PublisherSettings
    from tapio_publisher.subjects import k8s_subject

    n = len(lines)
    parts: list[tuple[str, float]] = []

    def step(name: str, fn: Callable[[], Any]) -> Any:
        t = time.process_time()
        out = fn()
        parts.append((name, (time.process_time() - t) / n * 1e6))
        return out

    def encode_by_hand() -> dict[str, list[bytes]]:
        groups: dict[str, list[bytes]] = {}
        for d, found in zip(new, changed, strict=True):
            for c in found:
                groups.setdefault(k8s_subject(d.namespace, "pods", c.action), []).append(
                    pod_wire(d, c, now, "", chain)
                )
        return groups

    new = [d for _, d in step("decode", lambda: [decode.watch_line("pods", ln, 1 << 20) for ln in lines])]
    changed = step("actions", lambda: [changes("pods", a, b) for a, b in zip(old, new, strict=True)])
    chain = (new[0].owner,) if new[0].owner else ()
    now = time.time_ns()
    ids = IdGenerator()
    if hand:
        groups = step("encode+subject", encode_by_hand)
    else:
        events = step("build", lambda: [build("pods", d, c, now_ns=now, owners=chain)
                                        for d, cs in zip(new, changed, strict=True) for c in cs])  # fmt: skip
        groups = step("subject+serialize", lambda: group_by_subject(events, ids)[0])
    enc = Encoder(PublisherSettings(spool_dir=tempfile.gettempdir()), ids)
    step("batch+compress", lambda: [enc.take(s, d, 0.0) for s, d in groups.items()] + [enc.seal_all()])
    return parts


def split_text(parts: list[tuple[str, float]]) -> str:
    return ", ".join(f"{k} {us:.1f}" for k, us in parts) + f"; sum {sum(us for _, us in parts):.1f}"


def cpu_split(feed: Feed, n: int = 20_000) -> str:
    """The collector's watch path step by step (see `steps`): what is left of its CPU per event is
    the event loop, the reader thread's HTTP read, the journal and snapshots, and NATS."""
    lines, old = watch_lines(feed, n)
    return "CPU per watch event in the collector's steps (us): " + split_text(steps(True, lines, old))


def compare(feed: Feed, seconds: float, n: int = 20_000) -> int:
    """Interleaved A/B in this process: the watch path with pod events encoded by hand against
    the message path (build + SerializeToString), the same lines, rounds alternating until
    `seconds`; CPU us per watch event of each step, summed over the rounds."""
    lines, old = watch_lines(feed, n)
    totals: dict[bool, dict[str, float]] = {True: {}, False: {}}
    rounds = 0
    deadline = time.monotonic() + seconds
    while rounds < 2 or time.monotonic() < deadline:
        for hand in (False, True) if rounds % 2 else (True, False):
            for name, us in steps(hand, lines, old):
                totals[hand][name] = totals[hand].get(name, 0.0) + us
        rounds += 1
    per = {by_hand: [(k, v / rounds) for k, v in t.items()] for by_hand, t in totals.items()}
    message_us, hand_us = sum(v for _, v in per[False]), sum(v for _, v in per[True])
    print(f"interleaved A/B, {rounds} rounds of {n} watch events each (load average {load()}), "
          "CPU us per watch event:", flush=True)  # fmt: skip
    print(f"  message path (build + serialize): {split_text(per[False])}")
    print(f"  hand-encoded (the collector's):   {split_text(per[True])}")
    print(f"message_us_per_event={message_us:.1f} hand_us_per_event={hand_us:.1f} "
          f"saving_percent={(1 - hand_us / message_us) * 100:.1f} loadavg={os.getloadavg()[0]:.1f}")  # fmt: skip
    return 0


SERVER_ALONE = r"""
import http.client, re, sys, time, urllib.parse
port, token, path, seconds = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
head = {"Authorization": "Bearer " + token}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
t, pods, cont = time.perf_counter(), 0, ""
while True:  # the list, page by page: only the continue token is read
    conn.request("GET", path + "?limit=500" + ("&continue=" + urllib.parse.quote(cont) if cont else ""), headers=head)
    body = conn.getresponse().read()
    pods += body.count(b'"kind":"Pod"')
    m = re.search(rb'"continue": ?"([^"]+)"', body[:600])
    if not m:
        break
    cont = m.group(1).decode()
list_s = time.perf_counter() - t
conn.request("GET", path + "?watch=true&resourceVersion=1", headers=head)
resp = conn.getresponse()
t, lines = time.perf_counter(), 0
while time.perf_counter() - t < seconds:
    lines += resp.read(1 << 20).count(b"\n")
print(f"{pods / list_s:.0f} {lines / (time.perf_counter() - t):.0f}")
"""


def server_alone(api: K8sApiServer, seconds: float) -> tuple[float, float]:
    """What the test API server gives a reader that does nothing (another process: no GIL shared
    with the server): list pods/s and watch lines/s. The collector cannot go faster than this."""
    proc = subprocess.run(
        [sys.executable, "-c", SERVER_ALONE, str(api.port), api.token, "/api/v1/pods", str(seconds)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"measuring the API server alone failed: {proc.stderr.strip()[-500:]}")
    out = proc.stdout.split()
    return float(out[0]), float(out[1])


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
    p.add_argument("--compare", action="store_true",
                   help="only the interleaved A/B of the watch path's in-process steps (pod events encoded by "
                        "hand against built as messages) for --seconds, then exit")  # fmt: skip
    args = p.parse_args(argv)
    if args.compare:
        return compare(Feed(min(args.pods, 20_000)), args.seconds)
    feed = Feed(args.pods)
    api = K8sApiServer(token="bench-token", bookmark_interval=5.0).start()
    t = time.perf_counter()
    feed.load(api)
    print(f"api server: {args.pods} pods on {NODE}, {feed.pod_bytes / args.pods:.0f} B of JSON each "
          f"({feed.pod_bytes / 1e6:.0f} MB), loaded in {time.perf_counter() - t:.1f} s", flush=True)  # fmt: skip
    print(model_cost(api), flush=True)
    print(cpu_split(feed), flush=True)
    alone_list, alone_watch = server_alone(api, 3.0)
    feed.watch_started, feed.watch_served = None, 0
    print(f"api server alone (a reader that only counts, in its own process): list {alone_list:.0f} pods/s, "
          f"watch {alone_watch:.0f} events/s", flush=True)  # fmt: skip
    print(f"load average at start (1, 5, 15 min): {load()}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="tk8s-bench-"))  # removed at the end, as the servers are stopped
    server = EmbeddedNats(tmp / "jetstream").start()
    anyio.run(provision, server.url)
    port = free_port()
    kc = api.kubeconfig(tmp / "kubeconfig.json")
    cmd = [sys.executable, "-m", "tapio_collector_k8s", "--kubeconfig", str(kc), "--node-name", NODE,
           "--nats-url", server.url, "--metrics-port", str(port), "--data-dir", str(tmp / "data"),
           "--log-level", "warning"]  # fmt: skip
    before = len(api.requests)  # the requests of the collector come after these
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
        ours = list(zip(api.requests, api.request_times, strict=True))[before:]
        first = next(t for (_, path), t in ours if "/pods?" in path)
        list_s = listed_at - first
        print(f"list: {args.pods} pods listed, derived and acknowledged in {list_s:.1f} s "
              f"({sum('/pods?' in path and 'watch' not in path for (_, path), _ in ours)} pages)", flush=True)  # fmt: skip
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
    print(f"load average at end (1, 5, 15 min): {load()}; the machine has {os.cpu_count()} cores", flush=True)
    print(f"list_pods_per_second={args.pods / list_s:.0f} watch_events_per_second={watch_rate:.0f} "
          f"rss_mb={rss_mb:.0f} cpu_percent={cpu:.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
