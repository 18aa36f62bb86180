"""Helpers of the Kubernetes collector tests: run collectors in-process or as their own process,
read the stream."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import nats

from tapio.events.v1 import events_pb2
from tapio_collector import Output
from tapio_collector.service import run_collector
from tapio_collector_k8s.adapters.client import Api, load_config
from tapio_collector_k8s.cli import SPEC
from tapio_collector_k8s.settings import K8sSettings
from tapio_collector_k8s.source import K8sSource
from tapio_common.config import CommonConfig, NatsConfig
from tapio_jetstream import decode_events
from tapio_testing.k8s_api import K8sApiServer

FAST_LEASE = {"lease_duration": 4.0, "renew_interval": 0.5, "renew_deadline": 3.0}
FAST_LEASE_FLAGS = [f"--{k.replace('_', '-')}={v:g}" for k, v in FAST_LEASE.items()]


async def stream_events(url: str) -> list[tuple[str, events_pb2.Event]]:
    """(subject, event) of every event in TAPIO_EVENTS, in stream order."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("TAPIO_EVENTS")
        out: list[tuple[str, events_pb2.Event]] = []
        if not info.state.messages:
            return out
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg("TAPIO_EVENTS", seq)
            out += [(str(msg.subject), e) for e in decode_events(msg.headers, msg.data or b"")]
        return out
    finally:
        await nc.close()


def actions(events: list[tuple[str, events_pb2.Event]], type_: str | None = None) -> list[tuple[str, str]]:
    return [(e.action, e.k8s.name) for _, e in events if type_ is None or e.type == type_]


async def wait_for(url: str, predicate: object) -> list[tuple[str, events_pb2.Event]]:
    """Polls the stream until predicate(events) holds (AssertionError naming what was there)."""
    assert callable(predicate)
    events: list[tuple[str, events_pb2.Event]] = []
    with anyio.move_on_after(60):  # polled: returns as soon as it holds
        while True:
            events = await stream_events(url)
            if predicate(events):
                return events
            await anyio.sleep(0.1)
    raise AssertionError(f"timed out; stream holds {actions(events)}")


def leads(source: K8sSource) -> bool:
    return source.elector is not None and source.elector.leader


def source_for(api: K8sApiServer, tmp: Path, **settings: object) -> K8sSource:
    kc = api.kubeconfig(tmp / "kubeconfig.json")
    s = K8sSettings(kubeconfig=str(kc), **{"checkpoint_interval": 0.5, **FAST_LEASE, **settings})  # type: ignore[arg-type]
    cfg, ns = load_config(s.kubeconfig or None, None)
    return K8sSource(s, Api(cfg), s.lease_namespace or ns)


@contextlib.asynccontextmanager
async def collector(
    api: K8sApiServer, nats_url: str, node: str, data_dir: Path, **settings: object
) -> AsyncIterator[tuple[Output, K8sSource]]:
    """A collector for `node` running in this process until the block ends (as on SIGTERM)."""
    await anyio.Path(data_dir).mkdir(parents=True, exist_ok=True)
    source = await anyio.to_thread.run_sync(lambda: source_for(api, data_dir, **settings))
    cfg = CommonConfig(
        nats=NatsConfig(urls=(nats_url,)), node_name=node, metrics_port=0, data_dir=str(data_dir)
    )
    async with anyio.create_task_group() as tg:
        out: Output = await tg.start(lambda task_status: run_collector(
            SPEC, cfg, source, handle_signals=False, task_status=task_status
        ))  # fmt: skip
        yield out, source
        tg.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def collector_process(
    api: K8sApiServer, nats_url: str, node: str, data_dir: Path, *flags: str
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """The collector as its own process (`python -m tapio_collector_k8s`, the fast Lease timings,
    `flags` after them) for `node`. SIGKILLed when the block ends if still running: a crash, no
    last checkpoint (the block may kill it earlier itself)."""
    kc = api.kubeconfig(data_dir.parent / f"{data_dir.name}-kubeconfig.json")
    argv = [sys.executable, "-m", "tapio_collector_k8s", "--kubeconfig", str(kc), "--node-name", node,
            "--nats-url", nats_url, "--metrics-port", "0", "--data-dir", str(data_dir),
            *FAST_LEASE_FLAGS, *flags]  # fmt: skip
    proc = await anyio.to_thread.run_sync(
        lambda: subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    )
    try:
        yield proc
    finally:
        await kill(proc)


async def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL (if still running) and reap."""
    if proc.poll() is None:
        proc.kill()
    await anyio.to_thread.run_sync(proc.wait, 10)


async def until(condition: Callable[[], object], what: str, within: float = 60.0) -> None:
    """Polls `condition` (every 50 ms) until it holds; AssertionError naming `what` after `within`
    seconds (a deadline for a hang only: it returns as soon as the condition holds)."""
    with anyio.move_on_after(within):
        while not condition():  # noqa: ASYNC110 - polling state of an in-process collector
            await anyio.sleep(0.05)
        return
    raise AssertionError(f"timed out waiting for {what}")
