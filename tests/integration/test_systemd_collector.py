"""The systemd collector against a real systemd (booted in its own namespaces) and a real JetStream:
the exact events published for a unit that fails, one that restarts three times and then stays up,
and one stopped by hand; nothing repeated across a collector restart; what changed during a bus
outage published once the bus is back, with /readyz false meanwhile; still following after systemd
re-executes itself."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from anyio.abc import TaskGroup
from nats.aio.client import Client
from nats.aio.msg import Msg

from tapio.events.v1 import events_pb2
from tapio_collector import Output
from tapio_collector.service import run_collector
from tapio_collector_systemd.cli import SPEC
from tapio_collector_systemd.settings import SystemdSettings
from tapio_collector_systemd.source import SystemdSource
from tapio_common.config import CommonConfig, NatsConfig
from tapio_common.nats.connect import connect
from tapio_jetstream.decode import decode_events
from tapio_jetstream.streams import apply_layout
from tapio_testing.jetstream import JetStreamServer
from tapio_testing.systemd_ns import NamespacedSystemd, SystemdUnavailable

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

NODE = "tsd-node-1"
FLAKY = r"""[Unit]
StartLimitIntervalSec=0
[Service]
ExecStart=/bin/sh -c 'n=$(cat /run/tsd-flaky 2>/dev/null || echo 0); n=$((n+1)); echo $n > /run/tsd-flaky; echo "tsd-flaky attempt $n"; [ $n -gt 3 ] && exec sleep infinity; exit 2'
Restart=on-failure
RestartSec=1
"""
UNITS = {
    # Each state lasts long enough (0.5-1 s) that systemd reports it on its own even on a busy
    # machine: systemd folds state changes that happen before it flushes its D-Bus queue into one
    # signal, which would make the sequence depend on load.
    "tsd-fail.service": "[Service]\nExecStartPre=/bin/sh -c 'echo tsd-fail: about to fail; sleep 0.5'\n"
    "ExecStart=/bin/false\n",
    "tsd-flaky.service": FLAKY,
    "tsd-manual.service": '[Service]\nExecStart=/bin/sh -c \'trap "sleep 0.5; exit 0" TERM; '
    "while :; do sleep 0.1; done'\n",
    "other.service": "[Service]\nExecStart=/bin/sleep infinity\n",  # not followed (filter)
}
Row = tuple[str, str, str, str, str, int, int, int, str]


def row(ev: events_pb2.Event) -> Row:
    """(unit, previous, state, sub state, result, exit code, exit status, restarts, seen)."""
    s = ev.systemd
    return (s.unit, s.previous_state, s.active_state, s.sub_state, s.result, s.exit_code, s.exit_status,
            s.restarts, ev.attributes["seen"])  # fmt: skip


def flaky_rows() -> list[Row]:
    """systemd 252: each crash is failed, then auto-restart (NRestarts counts when the restart job
    is queued), then dead while the restart job starts it again."""
    u = "tsd-flaky.service"
    rows: list[Row] = [(u, "inactive", "active", "running", "success", 0, 0, 0, "signal")]
    for n in range(3):
        rows += [
            (u, "active", "failed", "failed", "exit-code", 1, 2, n, "signal"),
            (u, "failed", "activating", "auto-restart", "exit-code", 1, 2, n, "signal"),
            (u, "activating", "activating", "auto-restart", "exit-code", 1, 2, n + 1, "signal"),
            (u, "activating", "inactive", "dead", "success", 0, 0, n + 1, "signal"),
            (u, "inactive", "active", "running", "success", 0, 0, n + 1, "signal"),
        ]
    return rows


@pytest.fixture
def systemd() -> Iterator[NamespacedSystemd]:
    sd = NamespacedSystemd(UNITS)
    try:
        sd.start()
    except SystemdUnavailable as e:
        pytest.skip(f"cannot boot systemd in a namespace here: {e}")
    try:
        yield sd
    finally:
        sd.stop()


class Stream:
    """Every event the stream holds on tapio.events.systemd.>, in stream order (ordered consumer)."""

    def __init__(self) -> None:
        self.events: list[events_pb2.Event] = []
        self.subjects: list[str] = []
        self._arrived = anyio.Event()

    async def on_msg(self, msg: Msg) -> None:
        for ev in decode_events(msg.headers, msg.data):
            self.events.append(ev)
            self.subjects.append(msg.subject)
        self._arrived.set()

    def of(self, unit: str) -> list[Row]:
        return [row(e) for e in self.events if e.systemd.unit == unit]

    async def wait(self, what: str, done: Callable[[], bool], within: float = 30.0) -> None:
        with anyio.move_on_after(within):
            while not done():
                self._arrived = anyio.Event()
                await self._arrived.wait()
        assert done(), f"timed out waiting for {what}; stream holds {[row(e) for e in self.events]}"


async def start(tg: TaskGroup, cfg: CommonConfig, sd: NamespacedSystemd) -> tuple[Output, anyio.CancelScope]:
    settings = SystemdSettings(
        include=("tsd-*",), bus_address=sd.bus_address, journal_root=sd.journal_root,
        reconnect_min=0.1, reconnect_max=0.5,
    )  # fmt: skip
    scope = anyio.CancelScope()

    async def run(*, task_status: anyio.abc.TaskStatus[Output]) -> None:
        with scope:
            await run_collector(
                SPEC, cfg, SystemdSource(settings), handle_signals=False, task_status=task_status
            )

    out: Output = await tg.start(run)
    return out, scope


async def wait_ready(out: Output, ready: bool, within: float = 30.0) -> None:
    with anyio.move_on_after(within):
        while out.readiness()[0] != ready:  # noqa: ASYNC110 - readiness is a flag, polled like /readyz
            await anyio.sleep(0.05)
    assert out.readiness()[0] == ready, out.readiness()


async def ctl(sd: NamespacedSystemd, *args: str, check: bool = True) -> None:
    """systemctl in the namespace, off the event loop (the collector runs in this process)."""
    await anyio.to_thread.run_sync(lambda: sd.systemctl(*args, check=check))


def message(line: str) -> str:
    """The message of a `short-iso` journal line (after `identifier[pid]: `)."""
    return re.sub(r"^\S+ \S+ [^:]+: ", "", line)


async def test_exact_transitions_restart_safety_and_bus_outage(
    systemd: NamespacedSystemd, jetstream: JetStreamServer, tmp_path: Path
) -> None:
    sd = systemd
    sd.systemctl("start", "tsd-manual.service", "other.service")  # running before the collector starts
    cfg = CommonConfig(
        nats=NatsConfig(urls=(jetstream.url,)), node_name=NODE, metrics_port=0, data_dir=str(tmp_path)
    )
    nc: Client = await connect(NatsConfig(urls=(jetstream.url,)), "tsd-test")
    stream = Stream()
    try:
        js = nc.jetstream()
        await apply_layout(js, 1)
        await js.subscribe("tapio.events.systemd.>", cb=stream.on_msg, ordered_consumer=True)
        async with anyio.create_task_group() as tg:
            out, scope = await start(tg, cfg, sd)
            await wait_ready(out, True)
            await stream.wait("the initial state", lambda: len(stream.events) >= 1)
            manual = "tsd-manual.service"
            assert stream.of(manual) == [(manual, "", "active", "running", "success", 0, 0, 0, "initial")]
            assert stream.events[0].attributes["initial"] == "true"
            assert stream.subjects[0] == "tapio.events.systemd.tsd-manual.active"

            # a unit that fails
            await ctl(sd, "start", "tsd-fail.service", check=False)  # fails, as it should
            fail = "tsd-fail.service"
            await stream.wait("tsd-fail failed", lambda: len(stream.of(fail)) >= 3)
            assert stream.of(fail) == [
                (fail, "inactive", "activating", "start-pre", "success", 0, 0, 0, "signal"),
                (fail, "activating", "active", "running", "success", 0, 0, 0, "signal"),
                (fail, "active", "failed", "failed", "exit-code", 1, 1, 0, "signal"),
            ]
            failed = [e for e in stream.events if e.systemd.unit == fail][-1]
            assert failed.severity == events_pb2.SEVERITY_ERROR
            assert stream.subjects[stream.events.index(failed)] == "tapio.events.systemd.tsd-fail.failed"
            journal = [message(x) for x in failed.attributes["journal"].split("\n")]
            assert journal[-2:] == [  # systemd's own lines, in order; the unit's output interleaves
                "tsd-fail.service: Main process exited, code=exited, status=1/FAILURE",
                "tsd-fail.service: Failed with result 'exit-code'.",
            ], journal
            assert {"Starting tsd-fail.service...", "tsd-fail: about to fail"} <= set(journal), journal

            # a unit that restarts three times, then stays up
            await ctl(sd, "start", "tsd-flaky.service", check=False)
            flaky = "tsd-flaky.service"
            await stream.wait("tsd-flaky up after 3 restarts", lambda: len(stream.of(flaky)) >= 16)
            assert stream.of(flaky) == flaky_rows()
            crashes = [e for e in stream.events if e.systemd.unit == flaky and e.action == "failed"]
            assert ["tsd-flaky attempt 3" in e.attributes["journal"] for e in crashes] == [False, False, True]

            # a unit stopped by hand
            await ctl(sd, "stop", manual)
            await stream.wait("tsd-manual stopped", lambda: len(stream.of(manual)) >= 3)
            assert stream.of(manual)[1:] == [
                (manual, "active", "deactivating", "stop-sigterm", "success", 0, 0, 0, "signal"),
                # the unit's TERM trap exits 0 after 0.5 s
                (manual, "deactivating", "inactive", "dead", "success", 1, 0, 0, "signal"),
            ]
            before_restart = len(stream.events)

            # collector restart: what changed while it was away is published once, nothing else again
            scope.cancel()
            await anyio.sleep(0.5)
            await ctl(sd, "start", manual)
            out, scope = await start(tg, cfg, sd)
            await wait_ready(out, True)
            await stream.wait("the change made while stopped", lambda: len(stream.events) > before_restart)
            await anyio.sleep(1.0)  # anything else it would (wrongly) republish arrives meanwhile
            assert [row(e) for e in stream.events[before_restart:]] == [
                (manual, "inactive", "active", "running", "success", 0, 0, 0, "relist")
            ]

            # bus outage: /readyz false while it retries; the change made meanwhile comes after
            await ctl(sd, "stop", "dbus.socket", "dbus.service")
            await wait_ready(out, False)
            assert "systemd unreachable" in out.readiness()[1] or "reconnecting" in out.readiness()[1]
            await ctl(sd, "stop", manual)  # systemctl talks to systemd's private socket: no bus needed
            before_outage_end = len(stream.events)
            await ctl(sd, "start", "dbus.socket")
            await wait_ready(out, True)
            await stream.wait(
                "the change made during the outage", lambda: len(stream.events) > before_outage_end
            )
            await anyio.sleep(1.0)
            assert [row(e) for e in stream.events[before_outage_end:]] == [
                # stopped and unloaded by systemd meanwhile: loaded again, it has no exit status any more
                (manual, "active", "inactive", "dead", "success", 0, 0, 0, "relist")
            ]

            # systemd re-executes itself (as on a package upgrade): the collector keeps following it
            await ctl(sd, "daemon-reexec")
            before_reexec = len(stream.events)
            await ctl(sd, "start", manual)
            await stream.wait("the start after daemon-reexec", lambda: len(stream.events) > before_reexec)
            await anyio.sleep(1.0)
            after = [row(e) for e in stream.events[before_reexec:]]
            assert len(after) == 1, after
            assert after[0][:8] == (manual, "inactive", "active", "running", "success", 0, 0, 0)
            assert after[0][8] in ("signal", "relist")  # relist if it ran before the collector resubscribed
            scope.cancel()
        ids = [e.id for e in stream.events]
        assert len(ids) == len(set(ids)), "an event was published twice"
        assert not any(e.systemd.unit == "other.service" for e in stream.events)
        assert {e.context.node for e in stream.events} == {NODE}
    finally:
        await nc.close()
