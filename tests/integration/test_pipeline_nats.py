"""The pipeline processor on a real JetStream, as its own process: enrichment and routes of the
public scenarios' events, kill -9 and restart without loss or duplicates, and a bad rule file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import anyio
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from tapio.events.v1 import events_pb2
from tapio_common.config import NatsConfig
from tapio_common.metrics import ComponentMetrics
from tapio_common.nats.connect import connect
from tapio_common.scenarios import all_events
from tapio_jetstream import Consumer, ConsumerSettings, decode_events
from tapio_jetstream.layout import PIPELINE, production_layout
from tapio_jetstream.streams import apply_layout
from tapio_pipeline.enrich import PodIndex
from tapio_pipeline.rules import load_rules
from tapio_pipeline.service.processor import Processor
from tapio_publisher import Publisher, PublisherError, PublisherSettings, Receipt
from tapio_testing.jetstream import JetStreamServer
from tapio_testing.wait import eventually

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

RULES = """\
destinations: [siem, archive]
default: [archive]
rules:
  - name: no-debug
    match: {severity: debug}
    drop: true
  - name: security
    match: {min_severity: warning}
    route: [siem, archive]
"""


def scenario_events() -> list[events_pb2.Event]:
    return all_events()


def expected_routes(events: list[events_pb2.Event]) -> Counter[tuple[str, str]]:
    """(event id, destination) the rules above give, computed by hand from the rule text."""
    want: Counter[tuple[str, str]] = Counter()
    for e in events:
        if e.severity == events_pb2.SEVERITY_DEBUG:
            continue
        dests = ("siem", "archive") if e.severity >= events_pb2.SEVERITY_WARNING else ("archive",)
        for d in dests:
            want[(e.id, d)] += 1
    return want


class PipelineProcess:
    def __init__(self, url: str, workdir: Path, rules: str) -> None:
        self.url = url
        self.workdir = workdir
        self.rules = workdir / "routes.yaml"
        self.rules.write_text(rules)
        self.log = workdir / "pipeline.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [sys.executable, "-m", "tapio_pipeline", "--nats-url", self.url, "--provision",
                "--rules", str(self.rules), "--metrics-port", "0", "--data-dir", str(self.workdir / "data")]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(30)
        return int(self.proc.returncode)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


async def publish(url: str, events: list[events_pb2.Event], tmp: Path) -> None:
    settings = PublisherSettings.from_section(
        {"batch_max_events": 50}, str(tmp / "pub"), name="test-collector"
    )
    async with Publisher(settings, nats=NatsConfig(urls=(url,))) as pub:
        await pub.publish_many(events)
        await pub.flush()


async def wait_drained(nc: Client, proc: PipelineProcess, within: float = 90.0) -> None:
    js = nc.jetstream()
    events_seq = (await js.stream_info("TAPIO_EVENTS")).state.last_seq
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not proc.alive():
            raise AssertionError(f"pipeline exited: {proc.log.read_text()[-3000:]}")
        try:
            info = await js.consumer_info("TAPIO_EVENTS", "pipeline")
        except NotFoundError:
            info = None
        if info is not None and info.ack_floor.stream_seq >= events_seq and info.num_ack_pending == 0:
            return
        await anyio.sleep(0.2)
    raise AssertionError(f"pipeline did not drain TAPIO_EVENTS in {within}s: {proc.log.read_text()[-3000:]}")


async def processed(nc: Client) -> list[tuple[str, events_pb2.Event]]:
    """Every event of TAPIO_PROCESSED with its subject, in stream order."""
    js = nc.jetstream()
    info = await js.stream_info("TAPIO_PROCESSED")
    out = []
    if info.state.messages:
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg("TAPIO_PROCESSED", seq)
            out += [(msg.subject or "", e) for e in decode_events(msg.headers, msg.data or b"")]
    return out


def routes_of(stored: list[tuple[str, events_pb2.Event]]) -> Counter[tuple[str, str]]:
    return Counter((e.id, subject.rsplit(".", 1)[1]) for subject, e in stored)


async def test_public_scenarios_are_enriched_and_routed(jetstream: JetStreamServer, tmp_path: Path) -> None:
    events = scenario_events()
    proc = PipelineProcess(jetstream.url, tmp_path, RULES)
    nc = await connect(NatsConfig(), "test", urls=(jetstream.url,))
    try:
        await apply_layout(nc.jetstream(), 1)
        proc.start()
        await publish(jetstream.url, events, tmp_path)
        await wait_drained(nc, proc)
        stored = await processed(nc)
        assert routes_of(stored) == expected_routes(events)
        for subject, e in stored:
            source = {1: "k8s", 2: "systemd", 3: "ebpf", 4: "cni"}[e.source]
            assert subject.startswith(f"tapio.processed.{source}.")
        # Kernel events that name a pod the pod events described carry its workload and uid now.
        pods = {(e.context.namespace, e.context.pod): e.context for e in events if e.type == "pods"}
        kernel = [
            e
            for _, e in stored
            if e.source == events_pb2.SOURCE_EBPF and (e.context.namespace, e.context.pod) in pods
        ]
        assert kernel, "the public scenarios hold kernel events of known pods"
        for e in kernel:
            known = pods[(e.context.namespace, e.context.pod)]
            assert e.context.pod_uid == known.pod_uid
            assert e.context.workload.name == known.workload.name
        assert proc.stop() == 0
    finally:
        if proc.alive():
            proc.stop()
        await nc.close()


async def test_kill_9_and_restart_lose_and_duplicate_nothing(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    events = scenario_events() * 1  # the scenarios' events; published in two halves around the kill
    half = len(events) // 2
    proc = PipelineProcess(jetstream.url, tmp_path, RULES)
    nc = await connect(NatsConfig(), "test", urls=(jetstream.url,))
    try:
        await apply_layout(nc.jetstream(), 1)
        proc.start()
        await publish(jetstream.url, events[:half], tmp_path)
        # Kill it while it works through the first half (some outputs published, their inputs not acked).
        js = nc.jetstream()
        with anyio.fail_after(60):
            while True:
                try:
                    info = await js.consumer_info("TAPIO_EVENTS", "pipeline")
                    if info.delivered.stream_seq > 0:
                        break
                except NotFoundError:
                    pass
                await anyio.sleep(0.05)
        proc.signal(signal.SIGKILL)
        assert proc.proc is not None
        proc.proc.wait(10)
        await publish(jetstream.url, events[half:], tmp_path)
        proc.start()
        await wait_drained(nc, proc)
        assert routes_of(await processed(nc)) == expected_routes(events)  # each (event, destination) once
        assert proc.stop() == 0
    finally:
        if proc.alive():
            proc.stop()
        await nc.close()


def test_a_bad_rule_file_fails_at_start_naming_the_line(tmp_path: Path) -> None:
    rules = tmp_path / "routes.yaml"
    rules.write_text(
        "destinations: [siem]\nrules:\n  - name: a\n    match: {severity: loud}\n    route: [siem]\n"
    )
    for argv in (["--check", str(rules)], ["--rules", str(rules), "--nats-url", "nats://127.0.0.1:1"]):
        out = subprocess.run(
            [sys.executable, "-m", "tapio_pipeline", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert out.returncode == 2, out
        lines = out.stderr.strip().splitlines()
        assert lines == [
            f"tapio-pipeline: error: {rules}:4: severity 'loud' is not one of debug, info, warning, error, critical"
        ]
    latin = tmp_path / "latin1.yaml"  # an editor's Latin-1 save: one line, not a traceback
    latin.write_bytes("destinations: [siem]\nrules:\n  - name: café\n    route: [siem]\n".encode("latin-1"))
    for argv in (["--check", str(latin)], ["--rules", str(latin), "--nats-url", "nats://127.0.0.1:1"]):
        out = subprocess.run(
            [sys.executable, "-m", "tapio_pipeline", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (out.returncode, out.stderr.strip().splitlines()) == (
            2,
            [f"tapio-pipeline: error: {latin}:3: not UTF-8 text (byte 0xe9)"],
        ), out
    good = tmp_path / "good.yaml"
    good.write_text(RULES)
    out = subprocess.run(
        [sys.executable, "-m", "tapio_pipeline", "--check", str(good)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0
    assert out.stdout.strip() == f"{good}: valid: 2 rules, destinations siem, archive, default archive"


RULES_AFTER_RELOAD = """\
destinations: [siem, archive, metrics]
default: [metrics]
rules:
  - name: no-debug
    match: {severity: debug}
    drop: true
  - name: security
    match: {min_severity: error}
    route: [siem]
"""


def routes_after_reload(events: list[events_pb2.Event]) -> Counter[tuple[str, str]]:
    """(event id, destination) RULES_AFTER_RELOAD gives, computed by hand from the rule text."""
    want: Counter[tuple[str, str]] = Counter()
    for e in events:
        if e.severity == events_pb2.SEVERITY_DEBUG:
            continue
        want[(e.id, "siem" if e.severity >= events_pb2.SEVERITY_ERROR else "metrics")] += 1
    return want


async def test_sighup_reloads_the_rules_and_a_bad_file_keeps_them(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    events = scenario_events()
    half = len(events) // 2
    proc = PipelineProcess(jetstream.url, tmp_path, RULES)
    nc = await connect(NatsConfig(), "test", urls=(jetstream.url,))
    try:
        await apply_layout(nc.jetstream(), 1)
        proc.start()
        await publish(jetstream.url, events[:half], tmp_path)
        await wait_drained(nc, proc)
        proc.rules.write_text(RULES_AFTER_RELOAD)
        proc.signal(signal.SIGHUP)
        await eventually(lambda: "rules reloaded" in proc.log.read_text(), "the reload logged", 30)
        await publish(jetstream.url, events[half:], tmp_path)
        await wait_drained(nc, proc)
        proc.rules.write_text("destinations: [siem]\nrules: [{name: x}]\n")  # no action: refused
        proc.signal(signal.SIGHUP)
        await eventually(lambda: "rule file not reloaded" in proc.log.read_text(), "the refusal logged", 30)
        proc.rules.write_bytes(b"destinations: [siem]\nrules:\n  - name: caf\xe9\n    route: [siem]\n")
        proc.signal(signal.SIGHUP)  # not UTF-8 (a Latin-1 save): refused too, the pipeline carries on
        await eventually(
            lambda: proc.log.read_text().count("rule file not reloaded") == 2, "the second refusal logged", 30
        )
        assert proc.alive(), proc.log.read_text()[-3000:]
        late = [events_pb2.Event.FromString(e.SerializeToString()) for e in events[:50]]
        for e in late:
            e.id = f"late-{e.id}"
        await publish(jetstream.url, late, tmp_path)
        await wait_drained(nc, proc)
        want = expected_routes(events[:half]) + routes_after_reload(events[half:]) + routes_after_reload(late)
        assert routes_of(await processed(nc)) == want  # nothing lost or doubled across the reloads
        assert proc.stop() == 0
    finally:
        if proc.alive():
            proc.stop()
        await nc.close()


async def test_a_bad_context_is_dead_lettered_at_once_and_repeated_events_pass_once(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    """Contexts are parsed by the routing done while the message is decoded: a message whose
    event carries a context that is no Context goes to tapio.dlq.pipeline on its first delivery;
    a later message repeating handled events (a re-published batch) gives only its new ones."""
    events = [e for e in scenario_events() if e.severity != events_pb2.SEVERITY_DEBUG][:40]
    proc = PipelineProcess(jetstream.url, tmp_path, RULES)
    nc = await connect(NatsConfig(), "test", urls=(jetstream.url,))
    js = nc.jetstream()
    try:
        await apply_layout(js, 1)
        proc.start()
        first = events_pb2.EventBatch(events=events[:30], batch_id="first").SerializeToString()
        await js.publish("tapio.events.ebpf.test.batch", first, headers={"Tapio-Encoding": "batch"})
        bad = events_pb2.Event(id="bad-ctx", source=events_pb2.SOURCE_EBPF, type="oom_kill")
        payload = bad.SerializeToString() + b"\x42\x03\xff\xff\xff"  # field 8 (context): no Context
        await js.publish("tapio.events.ebpf.test.bad", payload)
        again = events_pb2.EventBatch(events=events[20:40], batch_id="again").SerializeToString()
        await js.publish("tapio.events.ebpf.test.batch", again, headers={"Tapio-Encoding": "batch"})
        await wait_drained(nc, proc)
        dead = await js.get_last_msg("TAPIO_DLQ", "tapio.dlq.pipeline")
        headers = dead.headers or {}
        assert "Context" in headers.get("Tapio-Error", ""), headers
        assert dead.data == payload
        info = await js.consumer_info("TAPIO_EVENTS", "pipeline")
        assert info.num_redelivered == 0  # dead-lettered on its first delivery, not retried
        assert routes_of(await processed(nc)) == expected_routes(events)  # events 20..29 once
        assert proc.stop() == 0
    finally:
        if proc.alive():
            proc.stop()
        await nc.close()


class RefusesOnce(Publisher):
    """The real publisher, refusing the first publish of the output ids starting with `refuse` (as
    a stream that times out or refuses one message would): fault injection, not a fake."""

    refuse = ""
    refused = 0

    async def publish_message(
        self, subject: str, payload: bytes, *, msg_id: str, headers: Mapping[str, str] | None = None
    ) -> Receipt:
        if self.refuse and msg_id.startswith(self.refuse):
            self.refuse = ""
            self.refused += 1
            raise PublisherError(f"injected: {subject} refused {msg_id}")
        return await super().publish_message(subject, payload, msg_id=msg_id, headers=headers)


@pytest.mark.parametrize(("batch", "in_flight"), [(64, 1), (1, 2)], ids=["one-batch", "batches-in-flight"])
async def test_a_message_failing_after_a_later_one_of_its_batch_skipped_its_events_loses_none(
    jetstream: JetStreamServer, tmp_path: Path, batch: int, in_flight: int
) -> None:
    """Two messages pulled together (one batch, or two batches in flight) carry event X (a
    re-published batch): the later one is routed without X, since the earlier one carries it. When only the earlier one fails (its publish
    refused) and the later one is acked, the earlier one's redelivery must still publish X: the
    later one's ack must not have told the dedup window that X was handled."""
    events = [e for e in scenario_events() if e.severity != events_pb2.SEVERITY_DEBUG][:30]
    nc = await connect(NatsConfig(), "test", urls=(jetstream.url,))
    js = nc.jetstream()
    try:
        await apply_layout(js, 1)
        first = events_pb2.EventBatch(events=events[:20], batch_id="first").SerializeToString()
        a = await js.publish("tapio.events.ebpf.test.batch", first, headers={"Tapio-Encoding": "batch"})
        again = events_pb2.EventBatch(events=events[10:30], batch_id="again").SerializeToString()
        b = await js.publish("tapio.events.ebpf.test.batch", again, headers={"Tapio-Encoding": "batch"})
        settings = PublisherSettings(spool_dir=str(tmp_path / "spool"), batch_max_events=1)
        pub = RefusesOnce(settings, nc=nc)
        async with pub:
            pub.refuse = f"pipeline:TAPIO_EVENTS:{a.seq}:"
            metrics = ComponentMetrics("pipeline")
            processor = Processor(load_rules(RULES), PodIndex(), pub, metrics, batches_in_flight=in_flight)
            spec = production_layout().consumer(PIPELINE)
            quick = ConsumerSettings(
                backoff_first=0.05, backoff_most=0.2, expires=0.3, linger=0.3, batch=batch,
                batches_in_flight=in_flight,
            )  # fmt: skip
            consumer: Consumer[str] = Consumer(
                nc, spec, processor.kind, processor, component="pipeline", publisher=pub,
                metrics=metrics, settings=quick,
            )  # fmt: skip

            async def drained() -> bool:
                info = await js.consumer_info("TAPIO_EVENTS", PIPELINE)
                return bool(info.ack_floor.stream_seq >= b.seq and not info.num_ack_pending)

            async with anyio.create_task_group() as tg:
                await tg.start(consumer.run)
                await eventually(drained, "both messages acked", within=30)
                consumer.stop()
        assert pub.refused == 1, "the earlier message's publish was refused once"
        dropped = metrics.registry.get_sample_value(
            "tapio_pipeline_events_dropped_total", {"reason": "duplicate"}
        )
        assert dropped == 10, "the later message was given only its 10 new events"
        assert int((await js.stream_info("TAPIO_DLQ")).state.messages) == 0
        assert routes_of(await processed(nc)) == expected_routes(events)  # events 10..19 once, none lost
    finally:
        await nc.close()


async def test_nats_killed_and_restarted_mid_flow_loses_and_duplicates_nothing(
    jetstream: JetStreamServer, tmp_path: Path
) -> None:
    """nats-server kill -9 while events flow and the pipeline has messages in flight (pulled,
    outputs published, acks not all written), then restarted on the same store: the pipeline
    reconnects, pulls again, and every (event, destination) is in TAPIO_PROCESSED exactly once."""
    events = scenario_events()
    proc = PipelineProcess(jetstream.url, tmp_path, RULES)
    nc = await connect(NatsConfig(), "test", urls=(jetstream.url,))
    try:
        await apply_layout(nc.jetstream(), 1)
        proc.start()
        await eventually(lambda: "consuming" in proc.log.read_text(), "the pipeline consuming", 60)
        settings = PublisherSettings.from_section(
            {"batch_max_events": 10}, str(tmp_path / "pub"), name="test-collector"
        )
        sent = 0
        async with Publisher(settings, nats=NatsConfig(urls=(jetstream.url,))) as pub:

            async def producer() -> None:  # a collector's pace: the kill lands while messages flow
                nonlocal sent
                for n in range(0, len(events), 20):
                    await pub.publish_many(events[n : n + 20])
                    sent = n + 20
                    await anyio.sleep(0.05)

            async with anyio.create_task_group() as tg:
                tg.start_soon(producer)
                await eventually(lambda: sent >= len(events) // 3, "a third of the events sent", 60)
                jetstream.kill()
                await anyio.sleep(1.0)
                jetstream.restart()
            with anyio.fail_after(120):
                await pub.flush()
        await wait_drained(nc, proc, within=120)
        assert routes_of(await processed(nc)) == expected_routes(events)  # each (event, destination) once
        assert proc.alive()
        assert proc.stop() == 0
    finally:
        if proc.alive():
            proc.stop()
        await nc.close()
