"""Offline replay: the same engine over a scenario file (JSON Lines Events), final revisions out."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

import attrs
from google.protobuf import json_format

from tapio.events.v1 import events_pb2
from tapio_common.model import Correlation, Severity
from tapio_common.model.convert import correlation_to_json, ns_to_rfc3339
from tapio_correlator.engine import Engine, EngineConfig
from tapio_correlator.errors import ReplayInputError

PROGRESS_EVERY_S = 2.0
_ROOT_CANDIDATES = frozenset({"deployments", "nodes"})
# Events whose message the table may need (a root cause is one of these).
_NOTABLE = frozenset(
    events_pb2.Severity.Value(s.value) for s in (Severity.WARNING, Severity.ERROR, Severity.CRITICAL)
)


@attrs.define
class ReplayStats:
    lines: int = 0
    events: int = 0
    skipped: int = 0
    first_skip: str = ""
    revisions: int = 0
    seconds: float = 0.0
    engine: dict[str, int] = attrs.field(factory=dict)


@attrs.frozen
class RootInfo:
    """What the readable table shows about a root cause event."""

    time: int
    message: str


@attrs.define
class ReplayResult:
    correlations: list[Correlation]  # final revisions, sorted
    roots: dict[str, RootInfo]
    stats: ReplayStats


def read_events(
    lines: Iterable[str], name: str, stats: ReplayStats, skip_invalid: bool = False
) -> Iterator[events_pb2.Event]:
    """Decodes canonical proto3-JSON Events, one a line; a bad line raises (or is counted and skipped)."""
    for number, line in enumerate(lines, 1):
        stats.lines = number
        if not line.strip():
            continue
        msg = events_pb2.Event()
        try:
            json_format.Parse(line, msg)
        except json_format.ParseError as e:
            where = f"{name}:{number}: not a valid Event: {str(e).splitlines()[0][:300]}"
            if not skip_invalid:
                raise ReplayInputError(where) from e
            stats.skipped += 1
            stats.first_skip = stats.first_skip or where
            continue
        stats.events += 1
        yield msg


def final_revisions(revisions: Iterable[Correlation]) -> list[Correlation]:
    """The last revision of each correlation id, sorted by first_seen, type, id."""
    latest: dict[str, Correlation] = {}
    for c in revisions:
        known = latest.get(c.id)
        if known is None or c.revision >= known.revision:
            latest[c.id] = c
    return sorted(latest.values(), key=lambda c: (c.first_seen, c.type, c.id))


def replay(
    events: Iterable[events_pb2.Event],
    config: EngineConfig | None = None,
    stats: ReplayStats | None = None,
    progress: Callable[[ReplayStats], None] | None = None,
) -> ReplayResult:
    """Runs the engine over the events and returns the final revision of every correlation."""
    stats = stats or ReplayStats()
    engine = Engine(config)
    revisions: list[Correlation] = []
    roots: dict[str, RootInfo] = {}
    started = last_report = time.monotonic()
    for n, msg in enumerate(events, 1):
        if msg.severity in _NOTABLE or msg.type in _ROOT_CANDIDATES:
            ts = msg.time
            roots[msg.id] = RootInfo(ts.seconds * 1_000_000_000 + ts.nanos, msg.message)
        revisions.extend(engine.process_pb(msg))
        if progress is not None and n % 4096 == 0:
            now = time.monotonic()
            if now - last_report >= PROGRESS_EVERY_S:
                stats.seconds = now - started
                progress(stats)
                last_report = now
    revisions.extend(engine.finish())
    stats.revisions = len(revisions)
    stats.seconds = time.monotonic() - started
    stats.engine = engine.counters()
    final = final_revisions(revisions)
    wanted = {c.root_cause_event_id for c in final}
    return ReplayResult(final, {k: v for k, v in roots.items() if k in wanted}, stats)


def write_jsonl(correlations: Iterable[Correlation], out: TextIO) -> None:
    for c in correlations:
        out.write(correlation_to_json(c) + "\n")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(result: ReplayResult) -> str:
    """A readable table of incidents: type, confidence, score, root cause, #events, summary."""
    rows = result.correlations
    if not rows:
        return "no correlations"
    lines = [f"{'TYPE':<24} {'CONF':<6} {'SCORE':>5} {'ROOT CAUSE (time, message)':<60} {'#EV':>4}  SUMMARY"]
    for c in rows:
        root = result.roots.get(c.root_cause_event_id)
        when = ns_to_rfc3339(root.time)[:19].replace("T", " ") if root else "?"
        message = root.message if root else c.root_cause_event_id
        cause = _cut(f"{when} {message}", 60)
        lines.append(
            f"{c.type:<24} {c.confidence.token:<6} {c.score:>5.2f} {cause:<60} {len(c.event_ids):>4}  {c.summary}"
        )
    counts: dict[str, int] = {}
    for c in rows:
        counts[c.confidence.token] = counts.get(c.confidence.token, 0) + 1
    lines.append("")
    lines.append(
        f"{len(rows)} correlation(s): "
        + ", ".join(f"{counts.get(level, 0)} {level}" for level in ("high", "medium", "low"))
    )
    return "\n".join(lines)


def progress_to_stderr(stats: ReplayStats) -> None:
    rate = stats.events / stats.seconds if stats.seconds > 0 else 0.0
    print(f"replay: {stats.events:,} events ({rate:,.0f}/s), line {stats.lines:,}", file=sys.stderr)
