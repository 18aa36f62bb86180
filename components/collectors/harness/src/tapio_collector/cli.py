"""`collector_main(spec, argv)`: the command line every collector shares (help, config, start)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import anyio

from tapio_collector.spec import CollectorSpec
from tapio_common.cli import make_parser, run_cli
from tapio_common.config import add_common_arguments, load_common
from tapio_common.logging import configure_logging

HARNESS_HELP = """\
how it runs:
  Events go to NATS JetStream (stream TAPIO_EVENTS) through the Tapio publisher: batched,
  with deterministic event ids, and spooled under <data dir>/{component}/spool while NATS is
  unreachable (replayed in order once it answers). Without a NATS URL an embedded JetStream is
  started under <data dir>/jetstream with the streams provisioned. /metrics, /healthz and
  /readyz listen on the metrics port. SIGTERM or Ctrl-C stops the source and flushes (or spools)
  every event it emitted before exiting; a bad setting is one error line and exit code 2.
  YAML: the `{component}:` section holds this collector's settings and a `publisher:` mapping."""


def build_parser(spec: CollectorSpec) -> argparse.ArgumentParser:
    epilog = HARNESS_HELP.format(component=spec.component)
    if spec.settings_help:
        epilog = spec.settings_help.rstrip() + "\n\n" + epilog
    if spec.examples:
        epilog += "\n\nexamples:\n" + spec.examples.rstrip()
    parser = make_parser(spec.prog, spec.description, epilog)
    spec.add_arguments(parser)
    add_common_arguments(parser)
    return parser


def collector_main(spec: CollectorSpec, argv: Sequence[str] | None = None) -> int:
    """Parses flags, environment and the config file, builds the Source and runs it until SIGTERM.
    Bad configuration: one line `prog: error: ...` on stderr and exit 2 (run_cli)."""

    def main(args_list: Sequence[str]) -> int:
        from tapio_collector.service import run_collector

        args = build_parser(spec).parse_args(args_list)
        cfg = load_common(args, spec.component)
        source = spec.make_source(args, cfg)  # validates the collector's own settings first
        configure_logging(cfg.log_level, cfg.log_format)
        anyio.run(run_collector, spec, cfg, source)
        return 0

    return run_cli(spec.prog, main, argv)
