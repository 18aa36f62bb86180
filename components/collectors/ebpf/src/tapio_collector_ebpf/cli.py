"""Command line of `tapio-collector-ebpf`: flags, configuration and start-up."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tapio_common.cli import make_parser, run_cli
from tapio_common.config import add_common_arguments, load_common
from tapio_common.errors import TapioError

PROG = "tapio-collector-ebpf"
COMPONENT = "ebpf-collector"

DESCRIPTION = """\
eBPF collector: bcc tracepoint programs (sched_process_exec/exit, oom:mark_victim,
tcp:tcp_retransmit_skb, sock:inet_sock_set_state) with in-kernel aggregation; publishes to
tapio.events.ebpf.{type}.{severity}. Needs root, kernel headers and tracefs."""

EPILOG = """\
status: not implemented yet. This binary has its command line and configuration, but does not
collect or deliver anything yet: it exits with an error rather than pretend to run.

examples:
  sudo tapio-collector-ebpf --programs oom,tcp_retransmit"""


class NotImplementedYetError(TapioError):
    """The component's runtime is not written yet."""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(PROG, DESCRIPTION, EPILOG)
    parser.add_argument("--programs", metavar="LIST", help="comma-separated programs to load (default: all)")
    parser.add_argument(
        "--aggregate-ms", metavar="MS", help="in-kernel aggregation window in milliseconds (default 1000)"
    )
    add_common_arguments(parser)
    return parser


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    load_common(args, COMPONENT)  # validates flags, environment and the config file
    raise NotImplementedYetError(f"{COMPONENT} is not implemented yet (configuration is valid)")


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)
