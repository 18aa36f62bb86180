"""Two Tapio installations, prefixes `tapio` and `blue` (NATS_SUBJECT_PREFIX), on ONE real JetStream:
streams provisioned by `tapio-admin streams apply --subject-prefix`, then for each installation the
correlator, the pipeline and the SIEM exporter as their own processes (`--subject-prefix`), fed
with different public scenarios through the publisher collectors use. Neither installation sees
the other's events, correlations, alerts, processed events or dead letters."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

import anyio
import pytest
from nats.aio.client import Client

from tapio.correlations.v1 import correlations_pb2
from tapio.events.v1 import events_pb2
from tapio_common.config import NatsConfig
from tapio_common.nats.connect import connect
from tapio_common.scenarios import Scenario, load_scenarios
from tapio_common.subjects import KINDS, Subjects
from tapio_correlator.demo import shift
from tapio_jetstream import decode_events
from tapio_publisher import Publisher, PublisherSettings
from tapio_testing.jetstream import JetStreamServer
from tapio_testing.receivers.bulk import BulkReceiver
from tapio_testing.wait import eventually

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NS = 1_000_000_000
PREFIXES = ("tapio", "blue")
RULES = "destinations: [siem, archive]\ndefault: [archive]\nrules: []\n"
CORRELATOR_YAML = "correlator:\n  idle_advance: 1.0\n  fetch_timeout: 0.2\n  snapshot_interval: 2\n"


def _events(scenarios: list[Scenario]) -> list[events_pb2.Event]:
    out: list[events_pb2.Event] = []
    t = 0
    for sc in scenarios:
        t = shift(sc.events, t or sc.events[0].time.seconds * NS) + 30 * 60 * NS
        out += sc.events
    return out


@contextmanager
def _process(name: str, args: list[str], workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = workdir / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ))  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _installation(stack: ExitStack, url: str, prefix: str, work: Path, sink: BulkReceiver) -> None:
    work.mkdir(parents=True)
    (work / "routes.yaml").write_text(RULES)
    (work / "correlator.yaml").write_text(CORRELATOR_YAML)
    common = ["--nats-url", url, "--subject-prefix", prefix, "--metrics-port", "0"]
    applied = subprocess.run([sys.executable, "-m", "tapio_admin", "streams", "apply", *common[:4]],
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert Subjects(prefix).events_stream in applied.stdout
    procs = [
        stack.enter_context(_process("correlator", ["tapio_correlator", "serve", *common, "--config",
                            str(work / "correlator.yaml"), "--data-dir", str(work / "c")], work)),
        stack.enter_context(_process("pipeline", ["tapio_pipeline", *common, "--rules", str(work / "routes.yaml"),
                            "--data-dir", str(work / "p")], work)),
        stack.enter_context(_process("exporter", ["tapio_exporters", *common, "--sink",
                            f"elastic={sink.url}?index=alerts", "--resolve-after", "2", "--data-dir",
                            str(work / "e")], work)),
    ]  # fmt: skip
    stack.callback(_check_alive, procs, work)


def _check_alive(procs: list[subprocess.Popen[bytes]], work: Path) -> None:
    for p in procs:
        assert p.returncode in (None, 0, -15), f"{p.args!r} exited {p.returncode}: {_logs(work)}"


def _logs(work: Path) -> str:
    return "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-2000:]}" for f in work.glob("*.log"))


async def _stored(nc: Client, stream: str) -> list[tuple[str, dict[str, str], bytes]]:
    """Every message of `stream`: (subject, headers, data)."""
    js = nc.jetstream()
    info = await js.stream_info(stream)
    out = []
    if info.state.messages:
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            out.append((msg.subject or "", dict(msg.headers or {}), msg.data or b""))
    return out


async def _correlations(nc: Client, subjects: Subjects) -> dict[str, correlations_pb2.Correlation]:
    latest: dict[str, correlations_pb2.Correlation] = {}
    for _, _, data in await _stored(nc, subjects.correlations_stream):
        c = correlations_pb2.Correlation.FromString(data)
        if c.id not in latest or c.revision > latest[c.id].revision:
            latest[c.id] = c
    return latest


async def test_two_installations_share_one_server_and_see_nothing_of_each_other(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    scenarios = load_scenarios()
    mine = {"tapio": scenarios[0::2], "blue": scenarios[1::2]}
    events = {p: _events(mine[p]) for p in PREFIXES}
    ids = {p: {e.id for e in events[p]} for p in PREFIXES}
    expected = {
        p: {(x["type"], x["rootCauseEventId"]) for sc in mine[p] for x in sc.expected} for p in PREFIXES
    }
    names = {p: Subjects(p) for p in PREFIXES}
    sinks = {p: BulkReceiver() for p in PREFIXES}
    with ExitStack() as stack:
        for p in PREFIXES:
            stack.enter_context(sinks[p])
            _installation(stack, jetstream.url, p, tmp_path / p, sinks[p])
        nc = await connect(NatsConfig(urls=(jetstream.url,)), "test")
        try:
            await _feed(nc, names, events, tmp_path)

            async def found(p: str) -> bool:
                have = {(c.type, c.root_cause_event_id) for c in (await _correlations(nc, names[p])).values()}
                return expected[p] <= have

            for p in PREFIXES:
                await eventually(partial(found, p), f"{p}: every expected incident", within=90)
                await eventually(
                    partial(_dead_letters, nc, names[p], 2), f"{p}: its 2 dead letters", within=30
                )
                await eventually(partial(_has_docs, sinks[p]), f"{p}: alerts at its sink", within=30)
            await anyio.sleep(2.0)  # anything that would leak across has had time to arrive
            await _assert_isolated(nc, names, ids, sinks)
        except BaseException:
            print(_logs(tmp_path / "tapio"), _logs(tmp_path / "blue"))
            raise
        finally:
            await nc.close()


async def _feed(
    nc: Client, names: dict[str, Subjects], events: dict[str, list[events_pb2.Event]], tmp: Path
) -> None:
    """Each installation's events through the collectors' publisher, and one undecodable message."""
    for p, subjects in names.items():
        settings = PublisherSettings.from_section({}, str(tmp / p / "pub"), batch_linger=0.01)
        async with Publisher(settings, nc=nc, subjects=subjects) as pub:
            await pub.publish_many(events[p])
            await pub.flush()
        await nc.jetstream().publish(f"{subjects.events}.k8s.bad.pods.garbage", b"\xff\xfe not an event",
                                     headers={"Nats-Msg-Id": f"garbage-{p}"})  # fmt: skip


def _has_docs(sink: BulkReceiver) -> bool:
    return bool(sink.docs)


async def _dead_letters(nc: Client, subjects: Subjects, count: int) -> bool:
    info = await nc.jetstream().stream_info(subjects.dlq_stream)
    return int(info.state.messages) >= count


async def _assert_isolated(
    nc: Client, names: dict[str, Subjects], ids: dict[str, set[str]], sinks: dict[str, BulkReceiver]
) -> None:
    js = nc.jetstream()
    for p, subjects in names.items():
        other = next(q for q in PREFIXES if q != p)
        # Every stream of the installation holds its own subjects only.
        for kind in KINDS:
            for subject, _, _ in await _stored(nc, subjects.stream(kind)):
                assert subject.startswith(f"{subjects.root(kind)}."), (subjects.stream(kind), subject)
        # Events: exactly its own (plus the undecodable one).
        seen = set()
        for _, headers, data in await _stored(nc, subjects.events_stream):
            if headers.get("Nats-Msg-Id", "").startswith("garbage-"):
                continue
            seen |= {e.id for e in decode_events(headers, data)}
        assert seen == ids[p]
        # Correlations: made of its own events only.
        corrs = await _correlations(nc, subjects)
        assert corrs
        for c in corrs.values():
            assert set(c.event_ids) <= ids[p], f"{p} correlation {c.id} holds events of {other}"
        # Processed events: its own only.
        processed = set()
        for _, headers, data in await _stored(nc, subjects.processed_stream):
            processed |= {e.id for e in decode_events(headers, data)}
        assert processed
        assert processed <= ids[p]
        # Alerts, in its stream and at its sink: of its own correlations only.
        alerts = await _stored(nc, subjects.alerts_stream)
        assert alerts
        at_sink = {doc["tapio"]["correlation"]["id"] for _, doc in sinks[p].docs.values()}
        assert at_sink
        assert at_sink <= set(corrs)
        assert not at_sink & set(await _correlations(nc, names[other]))
        # Dead letters: its own garbage, from its own correlator and pipeline, on its own stream.
        letters = await _stored(nc, subjects.dlq_stream)
        assert sorted(s for s, _, _ in letters) == [f"{p}.dlq.correlator", f"{p}.dlq.pipeline"]
        assert all(h["Tapio-Stream"] == subjects.events_stream for _, h, _ in letters)
        # Consumers and the correlator's state bucket are the installation's own.
        consumers = {c.name for c in await js.consumers_info(subjects.events_stream)}
        assert {"correlator", "pipeline"} <= consumers
        assert "siem-exporter" in {c.name for c in await js.consumers_info(subjects.correlations_stream)}
        assert {"siem-exporter-elastic"} <= {c.name for c in await js.consumers_info(subjects.alerts_stream)}
        await js.stream_info(f"KV_{subjects.bucket('CORRELATOR_STATE')}")
