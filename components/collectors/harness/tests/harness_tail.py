"""A trivial Source for the harness tests: tails a JSON Lines file of recorded Events (canonical
proto3 JSON, e.g. tests/scenarios/public/*/events.jsonl) and emits each line, as `tail -f` would."""

from __future__ import annotations

import argparse
from pathlib import Path

import anyio
from google.protobuf import json_format

from tapio.events.v1 import events_pb2
from tapio_collector import CollectorSpec, Output, SourceError
from tapio_common.config import CommonConfig
from tapio_common.errors import ConfigError
from tapio_common.scenarios import public_root


def scenarios_dir() -> Path:
    """tests/scenarios/public (the one scenario loader finds it)."""
    return public_root()


class JsonlTail:
    """Emits every line of `path`, then the lines appended later (polled every `poll` s). A line
    that is not an Event is counted as dropped (`malformed`), never fatal."""

    def __init__(self, path: Path, poll: float = 0.02) -> None:
        self.path = path
        self.poll = poll

    async def run(self, out: Output) -> None:
        try:
            f = await anyio.open_file(self.path, "r", encoding="utf-8")
        except OSError as e:
            raise SourceError(f"cannot read {self.path}: {e.strerror}") from e
        async with f:
            pending, caught_up = "", False
            while True:
                chunk = await f.read()
                if not chunk:
                    if not caught_up:  # once: the test may say otherwise afterwards
                        out.set_ready(True, f"tailing {self.path}")
                        caught_up = True
                    await anyio.sleep(self.poll)
                    continue
                pending += chunk
                *lines, pending = pending.split("\n")
                events = []
                for line in lines:
                    if not line.strip():
                        continue
                    try:
                        events.append(json_format.Parse(line, events_pb2.Event()))
                    except json_format.ParseError:
                        out.metrics.drop("malformed")
                await out.emit_many(events)


def make_source(args: argparse.Namespace, cfg: CommonConfig) -> JsonlTail:
    if not args.input:
        raise ConfigError("--input is required: a JSON Lines file of events")
    return JsonlTail(Path(args.input))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("source options")
    g.add_argument("--input", metavar="FILE", help="JSON Lines file of events to tail")


SPEC = CollectorSpec(
    prog="tapio-test-tail",
    component="test-collector",
    description="Tails a JSON Lines file of recorded events into JetStream (harness tests).",
    make_source=make_source,
    add_arguments=add_arguments,
    examples="  tapio-test-tail --input events.jsonl --nats-url nats://127.0.0.1:4222",
)
