"""Command line of `tapio-correlator`: subcommands `serve` (NATS runner, default) and `replay`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from tapio_common.cli import make_parser, run_cli
from tapio_common.config import add_settings_arguments, load_settings, load_yaml
from tapio_correlator.cli_serve import add_demo_parser, add_serve_parser, run_demo_command, run_serve
from tapio_correlator.engine import EngineConfig
from tapio_correlator.errors import CorrelatorError
from tapio_correlator.replay import (
    ReplayStats,
    format_table,
    progress_to_stderr,
    read_events,
    replay,
    write_jsonl,
)

PROG = "tapio-correlator"

DESCRIPTION = """\
Tapio correlation engine: turns causally linked events (k8s, systemd, eBPF, CNI) into one
correlation per root cause (cascading_failure, node_failure, crash_loop, resource_pressure,
network_degradation, performance_degradation, deployment_failure, potential_issue).

subcommands:
  serve    consume tapio.events.> from NATS JetStream and publish tapio.correlations.> (default);
           with no NATS URL it starts an embedded JetStream and provisions the streams
  replay   run the same engine offline over a scenario file (JSON Lines Events)
  demo     play the public scenarios through an embedded JetStream and show incidents as they appear

`tapio-correlator --help` for the subcommands, `tapio-correlator serve --help` for the runner's flags."""

EPILOG = """\
examples:
  tapio-correlator                                               # serve on an embedded JetStream
  tapio-correlator serve --nats-url nats://nats:4222             # join a NATS cluster
  tapio-correlator demo                                          # the public scenarios, end to end
  tapio-correlator replay --input scenario.jsonl                 # readable table of incidents
  tapio-correlator replay --input scenario.jsonl --output out.jsonl
  zcat events.jsonl.gz | tapio-correlator replay --input - --output - --skip-invalid
  tapio-correlator replay --help"""

REPLAY_DESCRIPTION = """\
Replays a scenario file through the correlation engine, offline and deterministically (time comes
only from the events). Input: one canonical proto3-JSON Event a line (tapio.events.v1.Event), in
time order or out of order by up to --reorder-slack seconds (the engine settings below are the
same as serve's, with the same defaults). With --output: one canonical
proto3-JSON Correlation a line, final revisions only, sorted by first_seen, type and id. Without
--output: a readable table (type, confidence, score, root cause time and message, number of
events, summary). Progress goes to stderr every 2 s on big inputs."""

REPLAY_EPILOG = """\
exit status: 0 on success; 1 when the input cannot be read or a line is not a valid Event
(the error names file:line; --skip-invalid skips such lines and reports how many).

examples:
  tapio-correlator replay --input tests/scenarios/public/cascade-00/events.jsonl
  tapio-correlator replay --input events.jsonl --output correlations.jsonl
  cat events.jsonl | tapio-correlator replay --input - --output - > correlations.jsonl"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(PROG, DESCRIPTION, EPILOG)
    sub = parser.add_subparsers(dest="command", metavar="{serve,replay,demo}")
    add_serve_parser(sub)
    add_demo_parser(sub)
    rp = sub.add_parser(
        "replay",
        help="run the engine offline over a JSON Lines file of Events",
        description=REPLAY_DESCRIPTION,
        epilog=REPLAY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rp.add_argument(
        "--input", "-i", required=True, metavar="FILE", help="JSON Lines file of Events, or - for stdin"
    )
    rp.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write Correlations (JSON Lines) here, - for stdout (default: print a table instead)",
    )
    rp.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip lines that are not valid Events (counted and reported) instead of failing",
    )
    rp.add_argument(
        "--config",
        metavar="FILE",
        help="YAML file whose correlator.engine section sets the engine (the same file serve reads)",
    )
    rp.add_argument("--quiet", "-q", action="store_true", help="no progress or summary on stderr")
    add_settings_arguments(rp, EngineConfig, "engine settings (YAML section correlator.engine; as serve)")
    return parser


def _path(path: str) -> Path:
    """A path as the user meant it: under `bazel run`, relative to where bazel was started."""
    base = os.environ.get("BUILD_WORKING_DIRECTORY")
    return Path(base, path) if base and not Path(path).is_absolute() else Path(path)


def _open_input(path: str) -> TextIO:
    if path == "-":
        return sys.stdin
    try:
        return _path(path).open(encoding="utf-8")
    except OSError as e:
        raise CorrelatorError(f"cannot read {path}: {e.strerror}") from e


def run_replay(args: argparse.Namespace) -> int:
    section = load_yaml(str(_path(args.config))).child("correlator").child("engine") if args.config else None
    config = load_settings(EngineConfig, section, args=args, name="correlator.engine")
    name = "<stdin>" if args.input == "-" else args.input
    stats = ReplayStats()
    source = _open_input(args.input)
    try:
        events = read_events(source, name, stats, skip_invalid=args.skip_invalid)
        result = replay(events, config, stats, None if args.quiet else progress_to_stderr)
    except UnicodeDecodeError as e:
        raise CorrelatorError(f"{name}:{stats.lines + 1}: not UTF-8 text: {e.reason}") from e
    finally:
        if source is not sys.stdin:
            source.close()
    if args.output is None:
        print(format_table(result))
    elif args.output == "-":
        write_jsonl(result.correlations, sys.stdout)
    else:
        try:
            with _path(args.output).open("w", encoding="utf-8") as out:
                write_jsonl(result.correlations, out)
        except OSError as e:
            raise CorrelatorError(f"cannot write {args.output}: {e.strerror}") from e
    if not args.quiet:
        skipped = (
            f", skipped {stats.skipped} invalid line(s) (first: {stats.first_skip})" if stats.skipped else ""
        )
        print(
            f"replay: {stats.events:,} events in {stats.seconds:.2f}s, "
            f"{len(result.correlations)} correlation(s){skipped}",
            file=sys.stderr,
        )
    return 0


COMMANDS = frozenset({"serve", "replay", "demo"})


def _main(argv: Sequence[str]) -> int:
    argv = list(argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "serve")  # the default subcommand
    args = build_parser().parse_args(argv)
    if args.command == "replay":
        return run_replay(args)
    if args.command == "demo":
        return run_demo_command(args)
    return run_serve(args)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)
