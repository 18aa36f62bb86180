"""What a collector hands the harness: its Source (the one thing it implements) and its CLI text."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs

from tapio_collector.output import Output
from tapio_common.config import CommonConfig


class Source(Protocol):
    """A source of events in Vector's sense: it observes something (the API server, D-Bus, the
    kernel) and emits Events through the Output until it is cancelled.

    `run` raises SourceError for a fatal problem; it retries transient ones itself (with
    `out.set_ready(False, why)` while it cannot observe). On SIGTERM it is cancelled: clean-up that
    must still talk to the outside (e.g. releasing a lease) goes in a `finally` under
    `anyio.CancelScope(shield=True)` bounded by `anyio.move_on_after`. Events already emitted are
    flushed by the harness after `run` ends."""

    async def run(self, out: Output) -> None: ...


SourceFactory = Callable[[argparse.Namespace, CommonConfig], Source]
"""Builds the Source from the parsed flags and the common configuration (whose `section` is the
collector's own YAML section); raises ConfigError for bad settings, before anything starts."""


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    return None


@attrs.frozen
class CollectorSpec:
    """One collector: its names, its help text, its own flags and the factory of its Source.

    `component` names the metrics (`tapio_<component>_*`), the YAML section, the NATS client and
    the state directory `<data dir>/<component>` (spool and the source's own state).
    `publisher` overrides publisher defaults (the YAML `<component>.publisher` section wins)."""

    prog: str
    component: str
    description: str
    make_source: SourceFactory
    examples: str = ""
    settings_help: str = ""
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    publisher: Mapping[str, Any] = attrs.field(factory=dict)
