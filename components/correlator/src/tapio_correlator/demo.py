"""`tapio-correlator demo`: plays the public scenarios through an embedded JetStream, end to end."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import anyio
from nats.aio.msg import Msg

from tapio.correlations.v1 import correlations_pb2
from tapio.events.v1 import events_pb2
from tapio_common.config import CommonConfig, NatsConfig
from tapio_common.nats.connect import connect
from tapio_common.scenarios import Scenario, load_scenarios
from tapio_common.subjects import CORRELATIONS
from tapio_correlator.service.app import serve
from tapio_correlator.service.settings import RunnerSettings
from tapio_publisher import Publisher, PublisherSettings

NS = 1_000_000_000
GAP_NS = 30 * 60 * NS  # scenarios are played one after the other, 30 minutes of event time apart


def shift(events: list[events_pb2.Event], start_ns: int) -> int:
    """Moves the events' times so the first is at `start_ns`; returns the new time of the last."""
    if not events:
        return start_ns
    offset = start_ns - (events[0].time.seconds * NS + events[0].time.nanos)
    for ev in events:
        ev.time.FromNanoseconds(ev.time.seconds * NS + ev.time.nanos + offset)
    return events[-1].time.seconds * NS + events[-1].time.nanos


async def run_demo(scenarios_dir: Path, speed: float, out: TextIO = sys.stdout) -> int:
    """Publishes each scenario's events (paced by their timestamps / speed), prints incidents as
    the correlator publishes them, and checks them against expected.jsonl. Returns #missed."""
    scenarios = load_scenarios(scenarios_dir)
    seen: dict[str, tuple[str, str, str]] = {}  # correlation id -> (type, confidence, root)

    def show(text: str) -> None:
        print(text, file=out, flush=True)

    async def on_correlation(msg: Msg) -> None:
        c = correlations_pb2.Correlation()
        c.ParseFromString(msg.data)
        conf = correlations_pb2.Confidence.Name(c.confidence).removeprefix("CONFIDENCE_").lower()
        verb = "new" if c.id not in seen else "updated"
        seen[c.id] = (c.type, conf, c.root_cause_event_id)
        show(f"  -> {verb:<7} {msg.subject}  rev {c.revision}  {len(c.event_ids)} events: {c.summary}")

    with tempfile.TemporaryDirectory(prefix="tapio-demo-") as data_dir:
        cfg = CommonConfig(data_dir=data_dir, metrics_port=0)
        settings = RunnerSettings(embedded_port=0, idle_advance=1.0, fetch_timeout=0.2)
        async with anyio.create_task_group() as tg:
            runner = await tg.start(
                lambda task_status: serve(cfg, settings, handle_signals=False, task_status=task_status)
            )
            nc = await connect(NatsConfig(urls=(runner.url,)), "tapio-demo")
            await nc.subscribe(cfg.subjects.all(CORRELATIONS), cb=on_correlation)
            pub_settings = PublisherSettings.from_section({}, data_dir + "/demo", batch_linger=0.05)
            t_next = 0
            async with Publisher(pub_settings, nc=nc, subjects=cfg.subjects) as pub:
                for sc in scenarios:
                    t_last = shift(sc.events, t_next or sc.events[0].time.seconds * NS)
                    show(f"\n== {sc.name}: {len(sc.events)} events, played at {speed:g}x")
                    await _play(pub, sc.events, speed)
                    await pub.flush()
                    await anyio.sleep(settings.idle_advance + 1.5)  # quiet: time-decided results come out
                    t_next = t_last + GAP_NS
            await anyio.sleep(1.0)
            await nc.close()
            runner.stopping = True
    return _verdict(scenarios, seen, show)


async def _play(pub: Publisher, events: list[events_pb2.Event], speed: float) -> None:
    start_wall, start_ev = time.monotonic(), events[0].time.seconds * NS + events[0].time.nanos
    for ev in events:
        due = (ev.time.seconds * NS + ev.time.nanos - start_ev) / NS / speed
        delay = due - (time.monotonic() - start_wall)
        if delay > 0:
            await pub.flush()
            await anyio.sleep(delay)
        await pub.publish(ev)


def _verdict(
    scenarios: list[Scenario], seen: dict[str, tuple[str, str, str]], show: Callable[[str], None]
) -> int:
    found = {(t, root): conf for t, conf, root in seen.values()}
    missed = 0
    show("\nexpected incidents:")
    for sc in scenarios:
        for exp in sc.expected:
            key = (str(exp["type"]), str(exp["rootCauseEventId"]))
            conf = found.get(key)
            ok = conf == exp["confidence"]
            missed += not ok
            mark = "found" if ok else ("found as " + conf if conf else "MISSED")
            show(f"  {sc.name:<22} {exp['type']:<20} {exp['confidence']:<6} {mark}")
    return missed
