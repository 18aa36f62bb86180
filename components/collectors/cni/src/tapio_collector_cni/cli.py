"""Command line of `tapio-collector-cni`: flags, configuration and start-up."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tapio_common.cli import make_parser, run_cli
from tapio_common.config import add_common_arguments, load_common
from tapio_common.errors import TapioError

PROG = "tapio-collector-cni"
COMPONENT = "cni-collector"

DESCRIPTION = """\
CNI collector: samples interface counters (packets, drops, errors) of the node's and pods' network
interfaces and publishes loss findings to tapio.events.cni.{interface}.{direction}."""

EPILOG = """\
status: not implemented yet. This binary has its command line and configuration, but does not
collect or deliver anything yet: it exits with an error rather than pretend to run.

examples:
  tapio-collector-cni --interval 5"""


class NotImplementedYetError(TapioError):
    """The component's runtime is not written yet."""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(PROG, DESCRIPTION, EPILOG)
    parser.add_argument("--interval", metavar="SECONDS", help="sampling interval (default 10)")
    parser.add_argument(
        "--interface", metavar="GLOB", help="interfaces to watch, repeatable (default: eth*, veth*, cni*)"
    )
    add_common_arguments(parser)
    return parser


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    load_common(args, COMPONENT)  # validates flags, environment and the config file
    raise NotImplementedYetError(f"{COMPONENT} is not implemented yet (configuration is valid)")


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)
