"""Command line of `tapio-collector-systemd`: flags, configuration and start-up."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tapio_common.cli import make_parser, run_cli
from tapio_common.config import add_common_arguments, load_common
from tapio_common.errors import TapioError

PROG = "tapio-collector-systemd"
COMPONENT = "systemd-collector"

DESCRIPTION = """\
systemd collector: follows unit state changes over D-Bus (org.freedesktop.systemd1 PropertiesChanged)
and publishes them to tapio.events.systemd.{service}.{state}."""

EPILOG = """\
status: not implemented yet. This binary has its command line and configuration, but does not
collect or deliver anything yet: it exits with an error rather than pretend to run.

examples:
  tapio-collector-systemd --unit 'kubelet.service' --unit 'containerd.service'"""


class NotImplementedYetError(TapioError):
    """The component's runtime is not written yet."""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(PROG, DESCRIPTION, EPILOG)
    parser.add_argument(
        "--unit", metavar="PATTERN", help="unit glob to follow, repeatable (default: all service units)"
    )
    parser.add_argument(
        "--bus", metavar="ADDRESS", help="D-Bus address of the system bus (default: the system bus)"
    )
    add_common_arguments(parser)
    return parser


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    load_common(args, COMPONENT)  # validates flags, environment and the config file
    raise NotImplementedYetError(f"{COMPONENT} is not implemented yet (configuration is valid)")


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)
