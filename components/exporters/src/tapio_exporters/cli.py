"""Command line of `tapio-siem-exporter`: flags, configuration and start-up."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tapio_common.cli import make_parser, run_cli
from tapio_common.config import add_common_arguments, load_common
from tapio_common.errors import TapioError

PROG = "tapio-siem-exporter"
COMPONENT = "siem-exporter"

DESCRIPTION = """\
SIEM exporter: consumes tapio.correlations.>, publishes alerts to tapio.alerts.{severity}.{component} and
delivers them to Splunk HEC, Elastic (ECS), CEF, RFC 5424 syslog and webhook receivers."""

EPILOG = """\
status: not implemented yet. This binary has its command line and configuration, but does not
collect or deliver anything yet: it exits with an error rather than pretend to run.

examples:
  tapio-siem-exporter --sink syslog+tcp://siem:6514"""


class NotImplementedYetError(TapioError):
    """The component's runtime is not written yet."""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(PROG, DESCRIPTION, EPILOG)
    parser.add_argument(
        "--sink",
        metavar="URL",
        help="destination, repeatable: hec+https://host:8088, ecs+https://es:9200, syslog+tcp://host:514, cef+udp://host:514, webhook+https://...",
    )
    add_common_arguments(parser)
    return parser


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    load_common(args, COMPONENT)  # validates flags, environment and the config file
    raise NotImplementedYetError(f"{COMPONENT} is not implemented yet (configuration is valid)")


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)
