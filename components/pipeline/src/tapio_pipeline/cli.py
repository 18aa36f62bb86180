"""Command line of `tapio-pipeline`: flags, configuration and start-up."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tapio_common.cli import make_parser, run_cli
from tapio_common.config import add_common_arguments, load_common
from tapio_common.errors import TapioError

PROG = "tapio-pipeline"
COMPONENT = "pipeline"

DESCRIPTION = """\
Pipeline processor: consumes tapio.events.>, enriches events with topology context, filters and routes
them to tapio.processed.{type}.{destination}."""

EPILOG = """\
status: not implemented yet. This binary has its command line and configuration, but does not
collect or deliver anything yet: it exits with an error rather than pretend to run.

examples:
  tapio-pipeline --nats-url nats://nats:4222 --routes routes.yaml"""


class NotImplementedYetError(TapioError):
    """The component's runtime is not written yet."""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(PROG, DESCRIPTION, EPILOG)
    parser.add_argument("--routes", metavar="FILE", help="routing rules file (YAML)")
    add_common_arguments(parser)
    return parser


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    load_common(args, COMPONENT)  # validates flags, environment and the config file
    raise NotImplementedYetError(f"{COMPONENT} is not implemented yet (configuration is valid)")


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)
