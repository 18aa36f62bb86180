"""The embedded nats-server and the connection factory, against the real server binary."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import pytest

from tapio_common.config import NatsConfig
from tapio_common.errors import EmbeddedServerError, NatsUnavailableError
from tapio_common.nats.connect import connect
from tapio_common.nats.embedded import EMBEDDED_MAX_FILE_STORE, EmbeddedNats, free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_embedded_server_serves_jetstream(tmp_path: Path) -> None:
    with EmbeddedNats(tmp_path / "js") as server:
        nc = await connect(NatsConfig(urls=(server.url,)), "test")
        try:
            js = nc.jetstream()
            await js.add_stream(name="T", subjects=["t.>"])
            ack = await js.publish("t.a", b"hello")
            assert ack.seq == 1
            msg = await js.get_msg("T", 1)
            assert msg.data == b"hello"
        finally:
            await nc.close()
    assert (tmp_path / "js" / "jetstream").is_dir(), "the store lives in the given data dir"


async def test_embedded_storage_does_not_depend_on_free_disk(tmp_path: Path) -> None:
    """The production layout's 10 GB events stream is admitted whatever the disk has free."""
    with EmbeddedNats(tmp_path / "js") as server:
        nc = await connect(NatsConfig(urls=(server.url,)), "test")
        try:
            js = nc.jetstream()
            await js.add_stream(name="BIG", subjects=["big.>"], max_bytes=10 * 1024**3)
            varz = await anyio.to_thread.run_sync(_varz, server.monitor_port)
            assert varz["jetstream"]["config"]["max_storage"] == EMBEDDED_MAX_FILE_STORE
        finally:
            await nc.close()


def _varz(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/varz", timeout=5) as r:
        data: dict[str, Any] = json.load(r)
    return data


async def test_data_survives_a_crash(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "js").start()
    try:
        nc = await connect(NatsConfig(urls=(server.url,)), "test")
        js = nc.jetstream()
        await js.add_stream(name="T", subjects=["t.>"])
        await js.publish("t.a", b"kept")
        await nc.close()
        server.kill()
        server.start()
        nc = await connect(NatsConfig(urls=(server.url,)), "test")
        assert (await nc.jetstream().get_msg("T", 1)).data == b"kept"
        await nc.close()
    finally:
        server.stop()


async def test_unreachable_url_is_one_clear_error() -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    with pytest.raises(NatsUnavailableError, match=f"cannot reach NATS at {url}"):
        await connect(NatsConfig(urls=(url,), connect_timeout=1), "test")


async def test_user_password_auth(tmp_path: Path) -> None:
    conf_dir = tmp_path / "js"
    server = EmbeddedNats(conf_dir, extra_args=("--user", "tapio", "--pass", "s3cret"))
    with server:
        nc = await connect(NatsConfig(urls=(server.url,), user="tapio", password="s3cret"), "test")
        assert nc.is_connected
        await nc.close()
        with pytest.raises(NatsUnavailableError, match="Authorization Violation"):
            await connect(NatsConfig(urls=(server.url,), user="tapio", password="wrong"), "test")


def test_bad_server_arguments_fail_with_the_server_message(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path, extra_args=("--no-such-flag",))
    with pytest.raises(EmbeddedServerError, match="nats-server exited with code"):
        server.start()
