"""Test JetStream servers admit the production layout whatever the free disk: their storage limits
are explicit in server_conf (both engines load it), not a share of the disk free at start."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import anyio
import nats

from tapio_common.config import NatsConfig
from tapio_common.nats.connect import connect
from tapio_jetstream.layout import EVENTS, production_layout
from tapio_jetstream.streams import apply_layout
from tapio_testing.engine import EngineChoice
from tapio_testing.jetstream import (
    MAX_FILE_STORE,
    MAX_MEMORY_STORE,
    JetStreamServer,
    server_conf,
    start_jetstream,
)
from tapio_testing.natscluster import healthz, start_nats_cluster

BINARY = EngineChoice("binary", "this test asks for the binary")


def jetstream_config(server: JetStreamServer) -> dict[str, int]:
    with urllib.request.urlopen(f"http://{server.host}:{server.monitor_port}/varz", timeout=5) as resp:
        varz = json.loads(resp.read())
    config: dict[str, int] = varz["jetstream"]["config"]
    return config


async def apply_production(urls: list[str], replicas: int, cfg: NatsConfig | None = None) -> int:
    nc = await (connect(cfg, "limits-test") if cfg else nats.connect(servers=urls))
    try:
        js = nc.jetstream()
        await apply_layout(js, replicas, layout=production_layout(replicas))
        return int((await js.stream_info(EVENTS)).config.max_bytes or 0)
    finally:
        await nc.close()


def test_server_conf_sets_both_limits() -> None:
    conf = server_conf()
    assert f"max_file_store: {MAX_FILE_STORE}" in conf
    assert f"max_memory_store: {MAX_MEMORY_STORE}" in conf
    # What the production layout reserves must fit, with room for a second copy (two prefixes).
    events = production_layout().stream(EVENTS)
    assert 2 * events.max_bytes <= MAX_FILE_STORE


def test_single_server_admits_the_production_layout() -> None:
    with start_jetstream(BINARY) as server:
        config = jetstream_config(server)
        assert config["max_storage"] == MAX_FILE_STORE
        assert config["max_memory"] == MAX_MEMORY_STORE
        max_bytes = anyio.run(apply_production, [server.url], 1)
        assert max_bytes == production_layout().stream(EVENTS).max_bytes


def test_cluster_admits_the_production_layout_with_three_replicas(tmp_path: Path) -> None:
    """The production cluster (nats.conf's own limits, tapio-admin over TLS) admits the layout
    tapio-admin applies with --replicas 3."""
    with start_nats_cluster(tmp_path) as cluster:
        for node in cluster.nodes:
            assert healthz(node.host, node.http_port) == 200
            with urllib.request.urlopen(f"http://{node.host}:{node.http_port}/varz", timeout=5) as resp:
                assert json.loads(resp.read())["jetstream"]["config"]["max_storage"] == 10 * 1024**3
        cfg = cluster.identity("admin").nats_config(cluster.urls)
        max_bytes = anyio.run(apply_production, cluster.urls, 3, cfg)
        assert max_bytes == production_layout(3).stream(EVENTS).max_bytes


def test_the_chosen_engine_has_the_same_limits() -> None:
    """Whichever engine serves this run (container or binary) loads the same server_conf."""
    with start_jetstream() as server:
        config = jetstream_config(server)
        assert (config["max_storage"], config["max_memory"]) == (MAX_FILE_STORE, MAX_MEMORY_STORE)
