"""The CNI collector end to end (root): the real harness and publisher into a real JetStream,
sampling a namespace the test made. Loss caused on a veth reaches `tapio.events.cni.<if>.egress`;
the CNI configuration is reported when first seen and when it changes, and a restart does not
report an unchanged configuration again."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import nats
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from tapio.events.v1 import events_pb2
from tapio_collector.service import run_collector
from tapio_collector_cni.cli import SPEC
from tapio_collector_cni.settings import CniSettings
from tapio_collector_cni.source import CniSource
from tapio_common.config import CommonConfig, NatsConfig
from tapio_jetstream import decode_events
from tapio_jetstream.layout import production_layout
from tapio_jetstream.streams import apply_layout
from tapio_testing.jetstream import JetStreamServer
from tapio_testing.netfaults import send_udp
from tapio_testing.netns import Netns, node_and_pod, require_netns

pytestmark = [pytest.mark.root, pytest.mark.integration]
PREFIX = "tcni-e2e-"
HOST_IF = "tcni-e2e-h0"
NODE_IP, POD_IP = "10.231.9.1", "10.231.9.2"
BRIDGE = {"cniVersion": "0.4.0", "name": "tcni-net", "plugins": [{"type": "bridge", "bridge": "cni0"}]}
CALICO = {"cniVersion": "0.3.1", "name": "tcni-net", "plugins": [{"type": "calico"}, {"type": "bandwidth"}]}


@pytest.fixture
def net() -> Iterator[tuple[Netns, Netns]]:
    require_netns()
    with node_and_pod(PREFIX, HOST_IF, f"{NODE_IP}/24", f"{POD_IP}/24") as pair:
        yield pair


async def _provision(url: str) -> None:
    nc = await nats.connect(url)
    try:
        await apply_layout(nc.jetstream(), 1, layout=production_layout(1, scale=0.01))
    finally:
        await nc.close()


async def _stream(url: str) -> list[tuple[str, events_pb2.Event]]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("TAPIO_EVENTS")
        out: list[tuple[str, events_pb2.Event]] = []
        if info.state.messages:
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg("TAPIO_EVENTS", seq)
                out += [(msg.subject or "", e) for e in decode_events(msg.headers, msg.data or b"")]
        return out
    finally:
        await nc.close()


def _wait(
    portal: BlockingPortal, url: str, found: Callable[[list[tuple[str, events_pb2.Event]]], bool]
) -> list[tuple[str, events_pb2.Event]]:
    deadline = time.monotonic() + 20
    while True:
        got = portal.call(_stream, url)
        if found(got):
            return got
        assert time.monotonic() < deadline, f"not in the stream after 20 s: {[s for s, _ in got]}"
        time.sleep(0.1)


class Collector:
    """The collector running in the harness on the portal's event loop, until stopped."""

    def __init__(self, portal: BlockingPortal, url: str, tmp: Path) -> None:
        cfg = CommonConfig(
            nats=NatsConfig(urls=(url,)), node_name="tcni-node", metrics_port=0, data_dir=str(tmp / "data")
        )
        settings = CniSettings(
            netns=f"{PREFIX}node", interval=0.3, cni_conf_dir=str(tmp / "net.d"), cni_check_interval=0.2
        )
        self.source = CniSource(settings)

        async def run(task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
            await run_collector(SPEC, cfg, self.source, handle_signals=False, task_status=task_status)

        self.future, self.out = portal.start_task(run)

    def stop(self) -> None:
        self.future.cancel()


def _subjects(got: list[tuple[str, events_pb2.Event]]) -> list[str]:
    return [s for s, _ in got]


def test_loss_and_config_changes_reach_jetstream(
    net: tuple[Netns, Netns], jetstream: JetStreamServer, tmp_path: Path
) -> None:
    node, pod = net
    confdir = tmp_path / "net.d"
    confdir.mkdir()
    (confdir / "10-tcni.conflist").write_text(json.dumps(BRIDGE))
    config_subject = "tapio.events.cni.tcni-net.config"
    loss_subject = f"tapio.events.cni.{HOST_IF}.egress"
    with start_blocking_portal() as portal:
        portal.call(_provision, jetstream.url)
        collector = Collector(portal, jetstream.url, tmp_path)
        try:
            _wait(portal, jetstream.url, lambda got: config_subject in _subjects(got))
            time.sleep(0.7)  # a baseline sample of the veth
            pod.down("eth0")
            send_udp(node, POD_IP, 300)
            got = _wait(portal, jetstream.url, lambda got: loss_subject in _subjects(got))
            (config_file := confdir / "10-tcni.conflist").write_text(json.dumps(CALICO))
            got = _wait(portal, jetstream.url, lambda got: _subjects(got).count(config_subject) >= 2)
        finally:
            collector.stop()
        # Restarted with the same configuration: nothing new is reported about it.
        collector = Collector(portal, jetstream.url, tmp_path)
        try:
            time.sleep(1.0)
            assert collector.out.readiness()[0]
            after_restart = portal.call(_stream, jetstream.url)
        finally:
            collector.stop()
    loss = [e for s, e in got if s == loss_subject]
    drops = sum(e.network.drops for e in loss)
    # 300 drops; should a window boundary split them, a part under min_count (10) is not reported
    assert 291 <= drops <= 300
    assert all(e.action == "packet_loss" and e.network.direction == "egress" for e in loss)
    assert loss[0].context.node == "tcni-node"
    assert loss[0].attributes["cni_plugin"] == "bridge"  # the configuration in force then
    assert loss[0].network.loss_ratio == pytest.approx(1.0)
    configs = [e for s, e in got if s == config_subject]
    assert [e.action for e in configs] == ["detected", "changed"]
    assert configs[0].attributes["plugin"] == "bridge"
    assert configs[1].attributes["plugin"] == "calico"
    assert configs[1].attributes["previous_digest"] == configs[0].attributes["digest"]
    assert _subjects(after_restart).count(config_subject) == 2
    assert config_file.exists()
