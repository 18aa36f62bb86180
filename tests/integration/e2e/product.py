"""The product as the e2e scenarios run it: `tapio-admin up` as a person starts it, or its components
one by one (the command lines of `tapio_admin.plan`, the launcher's own) against a test JetStream so
a scenario can kill -9 one of them; plus reads of what came out (streams, DLQ, consumer backlogs).

Fed by the scenarios with a data directory and a NATS URL; everything started here is stopped by
the context managers, whatever the test did."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import anyio
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError

from tapio_admin.plan import HostFacts, Launch, plan
from tapio_admin.up import DEFAULT_RULES
from tapio_common.nats.embedded import free_port
from tapio_testing.natscluster import NatsCluster

CONSUMERS = "correlator,pipeline,siem-exporter"
HEC_TOKEN = "e2e-hec-token"
READY_LINE = "Ctrl-C stops everything"
STOP_GRACE = 60.0


class UpProcess:
    """`python -m tapio_admin up ...`, its output read line by line in a thread."""

    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def output(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def matching(self, pattern: str) -> list[str]:
        return [x for x in self.output() if re.search(pattern, x)]

    @property
    def url(self) -> str:
        found = self.matching(r"embedded JetStream on nats://")
        m = re.search(r"(nats://\S+)", found[0]) if found else None
        assert m, "\n".join(self.output())
        return m.group(1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(10)
        return self.proc.returncode


@contextmanager
def tapio_up(data: Path, *, exporter_sinks: Sequence[str] = (), within: float = 90.0) -> Iterator[UpProcess]:
    """The product through the README's launcher, the consumers only (no collector needs the host)."""
    argv = [sys.executable, "-m", "tapio_admin", "up", "--only", CONSUMERS, "--nats-port", "0",
            "--data-dir", str(data)]  # fmt: skip
    for spec in exporter_sinks:
        argv += ["--exporter-sink", spec]
    up = UpProcess(argv, {**os.environ, "E2E_HEC_TOKEN": HEC_TOKEN})
    try:
        deadline = time.monotonic() + within
        while not up.matching(READY_LINE):
            if up.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("tapio-admin up did not come up:\n" + "\n".join(up.output()))
            time.sleep(0.1)
        yield up
    finally:
        code = up.stop()
        assert code == 0, "tapio-admin up did not stop cleanly:\n" + "\n".join(up.output()[-30:])


def hec_sink(url: str) -> str:
    """The `--sink` spec of the HEC test receiver (indexer acknowledgement on, token from the env)."""
    return f"hec={url}?token_env=E2E_HEC_TOKEN&ack=true&ack_timeout=5"


class Component:
    """One component as its own process, started as `tapio-admin up` starts it (same command line);
    `env`: how it connects (NATS_IDENTITY and NATS_TLS_* of its own certificate on the cluster)."""

    def __init__(self, launch: Launch, url: str, data: Path, env: dict[str, str] | None = None) -> None:
        self.launch = launch
        self.url = url
        self.data = data
        self.env = env or {}
        self.log_path = data / "logs" / f"{launch.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = 0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.metrics_port = free_port()
        argv = [sys.executable, "-m", self.launch.module, *self.launch.args, "--nats-url", self.url,
                "--metrics-port", str(self.metrics_port), "--data-dir", str(self.data / self.launch.name)]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=log, start_new_session=True,
                env={**os.environ, "E2E_HEC_TOKEN": HEC_TOKEN, **self.env},
            )  # fmt: skip

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@contextmanager
def components(
    url: str, data: Path, *, exporter_sinks: Sequence[str] = (), cluster: NatsCluster | None = None
) -> Iterator[dict[str, Component]]:
    """The consumers (correlator, pipeline, SIEM exporter) each as its own process against `url`;
    on a production `cluster` (url = its URLs), each as its own workload identity (tapio-<name>)."""
    facts = HostFacts(root=False, bcc=False, pid1="", kubeconfig=None)  # consumers only
    launches, _ = plan(facts, str(DEFAULT_RULES), exporter_sinks)
    running = {
        x.name: Component(
            x, url, data, cluster.identity(f"tapio-{x.name}").env(cluster.urls) if cluster else None
        )
        for x in launches
    }
    try:
        for c in running.values():
            c.start()
        yield running
    finally:
        for c in running.values():  # the exporter last: it drains what the others produced
            c.stop()


# --- what came out ------------------------------------------------------------------------------


async def stream_messages(nc: Client, stream: str) -> list[Msg]:
    """Every message stored in `stream` (direct reads by sequence; small test streams)."""
    js = nc.jetstream()
    info = await js.stream_info(stream)
    out: list[Msg] = []
    for seq in range(int(info.state.first_seq or 1), int(info.state.last_seq) + 1):
        try:
            raw = await js.get_msg(stream, seq)
        except NotFoundError:
            continue
        out.append(Msg(nc, subject=raw.subject or "", data=raw.data or b"", headers=raw.headers))
    return out


async def backlogs(nc: Client) -> dict[str, tuple[int, int]]:
    """(pending, ack pending) of every durable consumer of every stream."""
    js = nc.jetstream()
    out: dict[str, tuple[int, int]] = {}
    for stream in await js.streams_info():
        name = stream.config.name or ""
        for c in await js.consumers_info(name):
            if c.config.durable_name:
                out[f"{name}/{c.name}"] = (int(c.num_pending or 0), int(c.num_ack_pending or 0))
    return out


async def drained(nc: Client, within: float = 90.0) -> dict[str, tuple[int, int]]:
    """Waits until every durable consumer has nothing pending; returns the last backlogs read."""
    last: dict[str, tuple[int, int]] = {}
    with anyio.move_on_after(within):
        while True:
            try:
                last = await backlogs(nc)
            except (NatsError, TimeoutError):  # a cluster electing its meta leader answers 503 briefly
                await anyio.sleep(0.5)
                continue
            if last and all(v == (0, 0) for v in last.values()):
                return last
            await anyio.sleep(0.5)
    return last
