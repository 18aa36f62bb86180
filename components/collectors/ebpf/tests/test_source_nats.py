"""The EbpfSource under the collector harness against a real nats-server: a real process exit
seen by the kernel programs lands in TAPIO_EVENTS on its subject, with the kernel metrics."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import anyio
import nats
import pytest

from tapio.events.v1 import events_pb2
from tapio_collector import Output
from tapio_collector.service import run_collector
from tapio_collector_ebpf.cli import SPEC
from tapio_collector_ebpf.settings import EbpfSettings
from tapio_collector_ebpf.source import EbpfSource
from tapio_common.config import CommonConfig, NatsConfig
from tapio_jetstream import decode_events
from tapio_testing.cgroups import named_sh, tag
from tapio_testing.jetstream import JetStreamServer
from tapio_testing.layout_fixtures import provision


async def events_on(url: str, subject: str) -> list[events_pb2.Event]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("TAPIO_EVENTS")
        out: list[events_pb2.Event] = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else ():
            msg = await js.get_msg("TAPIO_EVENTS", seq)
            if msg.subject == subject:
                out += decode_events(msg.headers, msg.data or b"")
        return out
    finally:
        await nc.close()


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        return str(resp.read().decode())


@pytest.mark.anyio
@pytest.mark.usefixtures("bpf_ready")
async def test_a_failed_process_reaches_its_subject(jetstream: JetStreamServer, tmp_path: Path) -> None:
    cfg = CommonConfig(
        nats=NatsConfig(urls=(jetstream.url,)), node_name="tbpf-node", metrics_port=0, data_dir=str(tmp_path)
    )
    name = f"tbpf-n{tag()}"
    await provision(jetstream.url)
    async with anyio.create_task_group() as tg:
        out: Output = await tg.start(lambda task_status: run_collector(
            SPEC, cfg, EbpfSource(EbpfSettings(interval_ns=200_000_000)), handle_signals=False, task_status=task_status
        ))  # fmt: skip
        with anyio.fail_after(30):
            while not out.ready:  # noqa: ASYNC110 - the harness's readiness has no event to wait on
                await anyio.sleep(0.05)
        with named_sh(name) as sh:
            await anyio.to_thread.run_sync(lambda: subprocess.run([sh, "-c", "exit 5"], check=False))
        with anyio.fail_after(20):
            while not (  # noqa: ASYNC110 - polling another server
                found := [
                    e
                    for e in await events_on(jetstream.url, "tapio.events.ebpf.process_exit.warning")
                    if e.kernel.comm == name
                ]
            ):
                await anyio.sleep(0.2)
        text = await anyio.to_thread.run_sync(metrics_text, out.metrics_port)
        tg.cancel_scope.cancel()
    (ev,) = found
    assert (ev.kernel.exit_code, ev.context.node, ev.source) == (5, "tbpf-node", events_pb2.SOURCE_EBPF)
    assert "tapio_ebpf_collector_kernel_events_total" in text


@pytest.mark.anyio
@pytest.mark.usefixtures("bpf_ready")
async def test_stopping_drains_the_window_in_progress(jetstream: JetStreamServer, tmp_path: Path) -> None:
    cfg = CommonConfig(
        nats=NatsConfig(urls=(jetstream.url,)), node_name="tbpf-node", metrics_port=0, data_dir=str(tmp_path)
    )
    name = f"tbpf-d{tag()}"
    await provision(jetstream.url)
    # A window of an hour: only the drain on the way out can deliver the exit.
    source = EbpfSource(EbpfSettings(interval_ns=3600 * 10**9))
    async with anyio.create_task_group() as tg:
        out: Output = await tg.start(lambda task_status: run_collector(
            SPEC, cfg, source, handle_signals=False, task_status=task_status
        ))  # fmt: skip
        with anyio.fail_after(30):
            while not out.ready:  # noqa: ASYNC110 - the harness's readiness has no event to wait on
                await anyio.sleep(0.05)
        with named_sh(name) as sh:
            await anyio.to_thread.run_sync(lambda: subprocess.run([sh, "-c", "exit 9"], check=False))
        tg.cancel_scope.cancel()
    found = [
        e
        for e in await events_on(jetstream.url, "tapio.events.ebpf.process_exit.warning")
        if e.kernel.comm == name
    ]
    assert [e.kernel.exit_code for e in found] == [9]
