"""`tapio-admin up` (make run) as a person runs it: real processes on an embedded JetStream, events
in, results out, Ctrl-C stops everything and leaves no process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import psutil
import pytest

from tapio_common.config import NatsConfig
from tapio_common.nats.connect import connect
from tapio_common.scenarios import load_scenarios
from tapio_common.subjects import Subjects
from tapio_publisher import Publisher, PublisherSettings

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ONLY = "correlator,pipeline,siem-exporter"


def start_up(tmp: Path, *extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    argv = [
        sys.executable,
        "-m",
        "tapio_admin",
        "up",
        "--only",
        ONLY,
        "--nats-port",
        "0",
        "--data-dir",
        str(tmp),
        *extra,
    ]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ)
    )
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if "Ctrl-C stops everything" in line:
            return proc, lines
    proc.kill()
    raise AssertionError("tapio-admin up did not come up:\n" + "\n".join(lines))


async def test_up_runs_the_components_that_can_run_and_stops_them_all(tmp_path: Path) -> None:
    proc, lines = start_up(tmp_path)
    try:
        url = re.search(r"embedded JetStream on (nats://\S+)", "\n".join(lines))
        assert url, lines
        pids = [int(m) for m in re.findall(r"pid (\d+)", "\n".join(lines))]
        assert len(pids) == 3, lines
        assert any("ebpf-collector" in x and "not started" in x for x in lines)
        assert any(x.startswith("tapio: systemd-collector") and "not started" in x for x in lines) or any(
            x.startswith("tapio: systemd-collector") and "pid" in x for x in lines
        )
        events = load_scenarios(pattern="cascade-00")[0].events
        settings = PublisherSettings.from_section({}, str(tmp_path / "pub"), name="test")
        async with Publisher(settings, nats=NatsConfig(urls=(url.group(1),))) as pub:
            await pub.publish_many(events)
            await pub.flush()
        nc = await connect(NatsConfig(), "test", urls=(url.group(1),))
        try:
            js = nc.jetstream()
            with anyio.fail_after(60):
                while True:  # the correlator found the cascade, the pipeline routed the events
                    corr = (await js.stream_info("TAPIO_CORRELATIONS")).state.messages
                    processed = (await js.stream_info("TAPIO_PROCESSED")).state.messages
                    if corr and processed:
                        break
                    await anyio.sleep(0.3)
        finally:
            await nc.close()
        assert proc.stdout is not None
        with anyio.fail_after(60):  # the SIEM exporter's console sink prints the alert as it fires
            while not any("FIRING" in x and "Cascading failure" in x for x in lines):
                line = await anyio.to_thread.run_sync(proc.stdout.readline)
                assert line, "tapio-admin up ended:\n" + "\n".join(lines)
                lines.append(line.rstrip("\n"))
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
        assert proc.returncode == 0, out
        assert "everything stopped" in out
        for pid in pids:
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_up_passes_its_subject_prefix_to_every_component(tmp_path: Path) -> None:
    """`tapio-admin up --subject-prefix blue`: BLUE_* streams only, and the correlator, the pipeline
    and the exporter all work on blue's names."""
    proc, lines = start_up(tmp_path, "--subject-prefix", "blue")
    try:
        url = re.search(r"embedded JetStream on (nats://\S+)", "\n".join(lines))
        assert url, lines
        events = load_scenarios(pattern="cascade-00")[0].events
        settings = PublisherSettings.from_section({}, str(tmp_path / "pub"), name="test")
        async with Publisher(
            settings, nats=NatsConfig(urls=(url.group(1),)), subjects=Subjects("blue")
        ) as pub:
            await pub.publish_many(events)
            await pub.flush()
        nc = await connect(NatsConfig(), "test", urls=(url.group(1),))
        try:
            js = nc.jetstream()
            names = {s.config.name for s in await js.streams_info()}
            assert names == {"BLUE_EVENTS", "BLUE_CORRELATIONS", "BLUE_ALERTS", "BLUE_PROCESSED", "BLUE_DLQ"}
            with anyio.fail_after(60):
                while True:
                    corr = (await js.stream_info("BLUE_CORRELATIONS")).state.messages
                    processed = (await js.stream_info("BLUE_PROCESSED")).state.messages
                    if corr and processed:
                        break
                    await anyio.sleep(0.3)
            msg = await js.get_last_msg("BLUE_CORRELATIONS", "blue.correlations.>")
            assert (msg.subject or "").startswith("blue.correlations.")
        finally:
            await nc.close()
        assert proc.stdout is not None
        with anyio.fail_after(60):
            while not any("FIRING" in x and "Cascading failure" in x for x in lines):
                line = await anyio.to_thread.run_sync(proc.stdout.readline)
                assert line, "tapio-admin up ended:\n" + "\n".join(lines)
                lines.append(line.rstrip("\n"))
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
        assert proc.returncode == 0, out
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_up_names_a_component_that_dies_and_stops_the_rest(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("destinations: []\n")  # the pipeline refuses it at start, after `up` launched it
    argv = [sys.executable, "-m", "tapio_admin", "up", "--only", ONLY, "--nats-port", "0",
            "--data-dir", str(tmp_path / "data"), "--rules", str(bad)]  # fmt: skip
    with anyio.fail_after(120):
        out = await anyio.run_process(argv, check=False)
    err = out.stderr.decode()
    assert out.returncode == 1, err
    assert "tapio-admin: error: pipeline stopped on its own (exit 2)" in err
    assert "'destinations' must name at least one destination" in err
