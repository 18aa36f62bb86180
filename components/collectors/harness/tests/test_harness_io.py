"""The harness against a real nats-server: recorded events tailed from a file reach TAPIO_EVENTS
once each; SIGTERM flushes what is held in open batches; without a NATS URL an embedded JetStream
keeps them in its store; /readyz follows the source; bad configuration is one line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import anyio
import attrs
import nats
import pytest
from google.protobuf import json_format
from harness_tail import SPEC, JsonlTail, scenarios_dir  # type: ignore[import-not-found]

from tapio.events.v1 import events_pb2
from tapio_collector import Output, collector_main
from tapio_collector.service import run_collector
from tapio_common.config import CommonConfig, NatsConfig
from tapio_common.nats.embedded import EmbeddedNats
from tapio_common.scenarios import load_scenario
from tapio_common.subjects import Subjects
from tapio_jetstream import decode_events
from tapio_testing.jetstream import JetStreamServer
from tapio_testing.layout_fixtures import provision

CHILD = Path(__file__).with_name("tail_child.py")


def recorded(name: str) -> list[str]:
    return list(load_scenario(scenarios_dir() / name).lines)


def ids_of(lines: list[str]) -> list[str]:
    return [json_format.Parse(ln, events_pb2.Event()).id for ln in lines]


async def stream_ids(url: str) -> list[str]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("TAPIO_EVENTS")
        ids: list[str] = []
        if not info.state.messages:
            return ids
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg("TAPIO_EVENTS", seq)
            ids += [e.id for e in decode_events(msg.headers, msg.data or b"")]
        return ids
    finally:
        await nc.close()


async def wait_for_ids(url: str, want: int) -> list[str]:
    with anyio.fail_after(20):
        while len(ids := await stream_ids(url)) < want:  # noqa: ASYNC110 - polling another server
            await anyio.sleep(0.05)
    return ids


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        return str(resp.read().decode())


def config(tmp_path: Path, urls: tuple[str, ...]) -> CommonConfig:
    return CommonConfig(
        nats=NatsConfig(urls=urls), node_name="tk8s-node-a", metrics_port=0, data_dir=str(tmp_path / "data")
    )


@pytest.mark.anyio
async def test_tailed_events_reach_the_stream_once_each(jetstream: JetStreamServer, tmp_path: Path) -> None:
    await provision(jetstream.url)
    first, later = recorded("cascade-00"), recorded("crash-00")
    feed = tmp_path / "events.jsonl"
    feed.write_text("\n".join(first) + "\nthis line is not an event\n")
    cfg = config(tmp_path, (jetstream.url,))
    async with anyio.create_task_group() as tg:
        out: Output = await tg.start(lambda task_status: run_collector(
            SPEC, cfg, JsonlTail(feed), handle_signals=False, task_status=task_status
        ))  # fmt: skip
        assert out.node_name == "tk8s-node-a"
        assert out.data_dir == tmp_path / "data" / "test-collector"
        got = await wait_for_ids(jetstream.url, len(first))
        assert sorted(got) == sorted(ids_of(first))
        port = out.metrics_port
        assert await anyio.to_thread.run_sync(http_status, port, "/readyz") == 200
        assert await anyio.to_thread.run_sync(http_status, port, "/healthz") == 200
        with feed.open("a") as f:
            f.write("\n".join(later) + "\n")
        got = await wait_for_ids(jetstream.url, len(first) + len(later))
        out.set_ready(False, "upstream gone")
        assert await anyio.to_thread.run_sync(http_status, port, "/readyz") == 503
        text = await anyio.to_thread.run_sync(metrics_text, port)
        tg.cancel_scope.cancel()
    assert sorted(got) == sorted(ids_of(first) + ids_of(later))
    assert 'tapio_test_collector_events_dropped_total{reason="malformed"} 1.0' in text
    assert f"tapio_test_collector_events_received_total {len(first) + len(later)}.0" in text
    assert (tmp_path / "data" / "test-collector" / "spool").is_dir()


def test_sigterm_flushes_open_batches(jetstream: JetStreamServer, tmp_path: Path) -> None:
    anyio.run(provision, jetstream.url)
    lines = recorded("deploy-00") + recorded("node-00")
    feed = tmp_path / "events.jsonl"
    feed.write_text("\n".join(lines) + "\n")
    conf = tmp_path / "tail.yaml"
    # A one-minute linger: every event waits in an open batch until SIGTERM seals and sends it.
    conf.write_text("test-collector:\n  publisher:\n    batch_linger: 60\n")
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), "--input", str(feed), "--config", str(conf),
         "--nats-url", jetstream.url, "--metrics-port", "0", "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if "metrics on" in line:
                break
        time.sleep(1.0)  # the tail has read the file; the stream holds nothing yet
        assert anyio.run(stream_ids, jetstream.url) == []
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, proc.stderr.read() if proc.stderr else ""
    got = anyio.run(stream_ids, jetstream.url)
    assert sorted(got) == sorted(ids_of(lines))


@pytest.mark.anyio
async def test_no_nats_url_runs_an_embedded_jetstream(tmp_path: Path) -> None:
    lines = recorded("network_unlinked-00")
    feed = tmp_path / "events.jsonl"
    feed.write_text("\n".join(lines) + "\n")
    cfg = config(tmp_path, ())
    async with anyio.create_task_group() as tg:
        out: Output = await tg.start(lambda task_status: run_collector(
            SPEC, cfg, JsonlTail(feed), handle_signals=False, task_status=task_status
        ))  # fmt: skip
        with anyio.fail_after(20):
            while out.confirmed < len(lines):  # noqa: ASYNC110 - counted by the publisher's callback
                await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    # The embedded server kept its store under the data dir: start it again and read the stream.
    with EmbeddedNats(tmp_path / "data" / "jetstream") as server:
        got = await stream_ids(server.url)
    assert sorted(got) == sorted(ids_of(lines))


def test_bad_configuration_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert collector_main(SPEC, ["--input", "x.jsonl", "--nats-url", "http://nowhere"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "tapio-test-tail: error: bad NATS URL 'http://nowhere': expected nats|tls|ws|wss://host[:port], e.g. nats://nats:4222"
    ]
    assert collector_main(SPEC, ["--nats-url", "nats://127.0.0.1:1"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "tapio-test-tail: error: --input is required: a JSON Lines file of events"
    ]


def test_fatal_source_error_is_one_line(jetstream: JetStreamServer, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    proc = subprocess.run(
        [sys.executable, str(CHILD), "--input", str(missing), "--nats-url", jetstream.url,
         "--metrics-port", "0", "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"tapio-test-tail: error: cannot read {missing}: No such file or directory"
    )


@pytest.mark.anyio
async def test_subject_prefix_names_the_subjects_and_the_embedded_streams(tmp_path: Path) -> None:
    """NATS_SUBJECT_PREFIX blue: the embedded server gets BLUE_* streams (no TAPIO_*), and every
    event is published on blue.events.<source>...."""
    lines = recorded("crash-00")
    feed = tmp_path / "events.jsonl"
    feed.write_text("\n".join(lines) + "\n")
    cfg = attrs.evolve(config(tmp_path, ()), subjects=Subjects("blue"))
    async with anyio.create_task_group() as tg:
        out: Output = await tg.start(lambda task_status: run_collector(
            SPEC, cfg, JsonlTail(feed), handle_signals=False, task_status=task_status
        ))  # fmt: skip
        with anyio.fail_after(20):
            while out.confirmed < len(lines):  # noqa: ASYNC110 - counted by the publisher's callback
                await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    with EmbeddedNats(tmp_path / "data" / "jetstream") as server:
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            names = {s.config.name for s in await js.streams_info()}
            assert names == {"BLUE_EVENTS", "BLUE_CORRELATIONS", "BLUE_ALERTS", "BLUE_PROCESSED", "BLUE_DLQ"}
            info = await js.stream_info("BLUE_EVENTS")
            ids: list[str] = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg("BLUE_EVENTS", seq)
                assert (msg.subject or "").startswith("blue.events."), msg.subject
                ids += [e.id for e in decode_events(msg.headers, msg.data or b"")]
        finally:
            await nc.close()
    assert sorted(ids) == sorted(ids_of(lines))
