"""systemd collector benchmark: units flapping as fast as systemd restarts them, every transition
systemd reported checked against what reached JetStream.

    bazel run //bench:systemd_collector -- --seconds 20

A real systemd boots in its own namespaces (tapio_testing.systemd_ns, private /tmp and unit
directory) with --units services `ExecStart=/bin/true`, `Restart=always`, `RestartSec=0`, no start
limit: systemd restarts each the moment it exits, as fast as it can fork. The collector runs as
its own process (the real `tapio-collector-systemd` command) on the namespace's system bus,
publishing to a local nats-server (binary, file store) with the production streams; the units
start once its /readyz says it is subscribed.

Independently, the benchmark listens on the same bus and counts every transition systemd
reported for those units (a Unit-interface PropertiesChanged whose ActiveState/SubState or
NRestarts differs from the unit's previous one). After --seconds the units are stopped; once the
collector has every event it took confirmed and the stream is quiet, `published` = events on
tapio.events.systemd.tsd-flapN.*, `missed` = reported minus published (where a unit's sequence
first differs is printed). The collector's own counters (D-Bus signals taken, events received and
confirmed) are printed too. `cpu_percent` is the collector process' CPU time over the run's wall time (100 =
one core). Last line:

    transitions_per_second=N published=N missed=N cpu_percent=N

Environment: runs as root (namespaces, cgroups); TAPIO_BENCH_KEEP=1 keeps the work directory.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import anyio
import nats.errors
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from tapio_common.config import NatsConfig
from tapio_common.nats.connect import connect
from tapio_common.nats.embedded import EmbeddedNats
from tapio_jetstream.decode import decode_events
from tapio_jetstream.streams import apply_layout
from tapio_testing.systemd_ns import NamespacedSystemd, SystemdUnavailable

RESTART_UNIT = """\
[Unit]
StartLimitIntervalSec=0
[Service]
ExecStart=/bin/true
Restart=always
RestartSec=0
LogLevelMax=warning
StandardOutput=null
"""
SUBJECT = "tapio.events.systemd.>"
PREFIX = "tapio.events.systemd.tsd-flap"
UNIT_IFACE = "org.freedesktop.systemd1.Unit"
SERVICE_IFACE = "org.freedesktop.systemd1.Service"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench-systemd-collector",
        description=__doc__.split("\n\n", 1)[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seconds", type=float, default=20.0, help="how long the units flap (default 20)")
    p.add_argument("--units", type=int, default=4, help="flapping units (default 4)")
    p.add_argument(
        "--quiet-seconds", type=float, default=3.0, help="stream silence that ends the run (default 3)"
    )
    return p.parse_args(argv)


class Observer:
    """Counts the transitions systemd reports on the bus, independently of the collector."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.reported = 0
        self._last: dict[str, tuple[str, str, int]] = {}
        self._restarts: dict[str, int] = {}
        self.per_unit: dict[str, int] = {}
        self.signals = 0  # PropertiesChanged of the flapping units (both interfaces)
        self.rows: dict[str, list[tuple[str, str, int]]] = {}  # per unit, in order
        self.bus: MessageBus | None = None

    async def start(self) -> None:
        self.bus = await MessageBus(bus_address=self.address).connect()
        self.bus.add_message_handler(self._on)
        rule = ("type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                "path_namespace='/org/freedesktop/systemd1/unit'")  # fmt: skip
        await self.bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                    interface="org.freedesktop.DBus", member="AddMatch", signature="s", body=[rule]))  # fmt: skip
        await self.bus.call(Message(destination="org.freedesktop.systemd1", path="/org/freedesktop/systemd1",
                                    interface="org.freedesktop.systemd1.Manager", member="Subscribe"))  # fmt: skip

    def _on(self, msg: Message) -> None:
        if msg.message_type is not MessageType.SIGNAL or msg.member != "PropertiesChanged":
            return
        path = msg.path or ""
        if "tsd_2dflap" not in path:
            return
        self.signals += 1
        iface, changed = msg.body[0], msg.body[1]
        if iface == SERVICE_IFACE and "NRestarts" in changed:
            self._restarts[path] = int(str(_v(changed["NRestarts"])))
        elif iface == UNIT_IFACE and "ActiveState" in changed:
            now = (str(_v(changed["ActiveState"])), str(_v(changed["SubState"])), self._restarts.get(path, 0))
            prev = self._last.get(path, ("inactive", "dead", 0))
            if now != prev:
                self.reported += 1
                unit = path.rsplit("/", 1)[-1].replace("_2d", "-").replace("_2e", ".")
                self.per_unit[unit] = self.per_unit.get(unit, 0) + 1
                self.rows.setdefault(unit, []).append(now)
            self._last[path] = now

    def close(self) -> None:
        if self.bus is not None:
            self.bus.disconnect()


def metrics_url(work: Path) -> str | None:
    found = re.search(
        r"metrics on (http://\S+)/metrics", (work / "collector.log").read_text(errors="replace")
    )
    return found.group(1) if found else None


def ready(work: Path) -> bool:
    url = metrics_url(work)
    if url is None:
        return False
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


async def wait_ready(work: Path, collector: subprocess.Popen[bytes], within: float = 60.0) -> None:
    """Until the collector's /readyz says 200 (connected to systemd, units listed)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if collector.poll() is not None:
            raise SystemExit(f"bench: the collector exited: {(work / 'collector.log').read_text()[-2000:]}")
        if await anyio.to_thread.run_sync(ready, work):
            return
        await anyio.sleep(0.1)
    raise SystemExit(f"bench: the collector was not ready within {within:.0f}s")


def collector_counters(work: Path) -> dict[str, float]:
    """The collector's own counters from its /metrics: events received (taken from D-Bus and handed
    to the publisher), published (confirmed by JetStream), dropped, errors."""
    url = metrics_url(work)
    if url is None:
        return {}
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    prefix = "tapio_systemd_collector_"
    for line in text.splitlines():
        if line.startswith(prefix) and "_total" in line:
            name, _, value = line.rpartition(" ")
            key = name.removeprefix(prefix).replace("events_", "").replace("_total", "")
            out[key] = out.get(key, 0.0) + float(value)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (/proc/PID/stat utime and stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _v(value: object) -> object:
    return value.value if isinstance(value, Variant) else value


async def stream_counts(nc_url: str) -> dict[str, int]:
    """Events per unit (`tsd-flapN`) on the stream."""
    nc = await connect(NatsConfig(urls=(nc_url,)), "bench-count")
    try:
        info = await nc.jetstream().stream_info("TAPIO_EVENTS", subjects_filter=SUBJECT)
        out: dict[str, int] = {}
        for subj, n in (info.state.subjects or {}).items():
            if subj.startswith(PREFIX):
                unit = subj.split(".")[3]
                out[unit] = out.get(unit, 0) + n
        return out
    finally:
        await nc.close()


async def show_divergence(nats_url: str, unit: str, reported: list[tuple[str, str, int]]) -> None:
    """Where the stream's sequence of a unit first differs from what systemd reported."""
    nc = await connect(NatsConfig(urls=(nats_url,)), "bench-diff")
    got: list[tuple[str, str, int]] = []
    try:
        token = unit.removesuffix(".service").replace(".", "_")
        sub = await nc.jetstream().subscribe(f"tapio.events.systemd.{token}.*", ordered_consumer=True)
        with anyio.move_on_after(10):
            while True:
                msg = await sub.next_msg(timeout=2)
                got += [(e.systemd.active_state, e.systemd.sub_state, e.systemd.restarts)
                        for e in decode_events(msg.headers, msg.data)]  # fmt: skip
    except nats.errors.TimeoutError:
        pass
    finally:
        await nc.close()
    for i, (a, b) in enumerate(zip(reported, got, strict=False)):
        if a != b:
            print(f"bench: {unit}: first difference at #{i}: reported {reported[max(0, i - 2) : i + 3]} "
                  f"stream {got[max(0, i - 2) : i + 3]}")  # fmt: skip
            return


def launch_collector(work: Path, nats_url: str, sd: NamespacedSystemd) -> subprocess.Popen[bytes]:
    """The real collector command, as its own process (its CPU is measured alone)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    with open(work / "collector.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tapio_collector_systemd", "--nats-url", nats_url, "--bus", sd.bus_address,
             "--unit", "tsd-flap*", "--journal-root", sd.journal_root, "--data-dir", str(work / "data"),
             "--metrics-port", "0", "--node-name", "bench-node", "--log-level", "info"],
            env=env, stdout=log, stderr=log,
        )  # fmt: skip


async def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="tsd-bench-"))
    units = {f"tsd-flap{i}.service": RESTART_UNIT for i in range(args.units)}
    nats = EmbeddedNats(work / "jetstream", server_name="tsd-bench")
    sd = NamespacedSystemd(units, name="tsd-bench")
    collector: subprocess.Popen[bytes] | None = None
    try:
        try:
            sd.start()
        except SystemdUnavailable as e:
            print(f"bench: cannot boot systemd in a namespace here: {e}", file=sys.stderr)
            return 2
        nats.start()
        nc = await connect(NatsConfig(urls=(nats.url,)), "bench-provision")
        await apply_layout(nc.jetstream(), 1)
        await nc.close()
        collector = launch_collector(work, nats.url, sd)
        observer = Observer(sd.bus_address)
        await observer.start()
        await wait_ready(work, collector)  # subscribed and listed: it sees every transition from now on
        cpu0 = cpu_seconds(collector.pid)
        t0 = time.monotonic()
        print(f"bench: {args.units} units flapping (Restart=always, RestartSec=0) for {args.seconds:.0f}s; "
              f"collector pid {collector.pid} on {sd.bus_address}")  # fmt: skip
        await anyio.to_thread.run_sync(lambda: sd.systemctl("start", *units))
        await anyio.sleep(args.seconds)
        await anyio.to_thread.run_sync(lambda: sd.systemctl("stop", *units))
        flap_seconds = time.monotonic() - t0
        reported_at_stop = observer.reported
        last, quiet_since, deadline = -1, time.monotonic(), time.monotonic() + 120
        while time.monotonic() < deadline:
            await anyio.sleep(0.5)
            per_unit = await stream_counts(nats.url)
            n = sum(per_unit.values())
            if n != last:
                last, quiet_since = n, time.monotonic()
            counters = await anyio.to_thread.run_sync(collector_counters, work)
            settled = counters.get("received") == counters.get("published")  # nothing left to confirm
            if settled and time.monotonic() - quiet_since >= args.quiet_seconds:
                break
        wall = time.monotonic() - t0
        print(
            f"bench: collector counters: {collector_counters(work)}; the bench saw {observer.signals} signals"
        )
        cpu = cpu_seconds(collector.pid) - cpu0
        published = last
        reported = observer.reported
        observer.close()
        rate = reported / flap_seconds
        print(f"bench: systemd reported {reported} transitions ({reported_at_stop} before the stop) in "
              f"{flap_seconds:.1f}s; stream holds {published} events; "
              f"collector CPU {cpu:.1f}s over {wall:.1f}s")  # fmt: skip
        missed = max(reported - published, 0)
        extra = max(published - reported, 0)
        for unit, n in sorted(observer.per_unit.items()):
            got = per_unit.get(unit.removesuffix(".service").replace(".", "_"), 0)
            if got != n:
                print(f"bench: {unit}: systemd reported {n}, stream holds {got}")
                await show_divergence(nats.url, unit, observer.rows[unit])
        if extra:
            print(f"bench: {extra} events more than systemd reported (duplicates?)")
        print(f"transitions_per_second={rate:.0f} published={published} missed={missed} "
              f"cpu_percent={100 * cpu / wall:.0f}")  # fmt: skip
        return 0 if missed == 0 and extra == 0 else 1
    finally:
        if collector is not None and collector.poll() is None:
            collector.terminate()
            try:
                collector.wait(15)
            except subprocess.TimeoutExpired:
                collector.kill()
        sd.stop()
        nats.stop()
        if not os.environ.get("TAPIO_BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    return anyio.run(run, parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
