"""Command line of `tapio-collector-k8s`: flags, configuration and start-up."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tapio_common.cli import make_parser, run_cli
from tapio_common.config import add_common_arguments, load_common
from tapio_common.errors import TapioError

PROG = "tapio-collector-k8s"
COMPONENT = "k8s-collector"

DESCRIPTION = """\
Kubernetes collector: watches pods, nodes, services, endpoints, deployments, replicasets and core
Events through the API server (list + watch with resourceVersion, bookmarks, 410 resync) and
publishes them as Tapio events to tapio.events.k8s.{namespace}.{resource}.{action}."""

EPILOG = """\
status: not implemented yet. This binary has its command line and configuration, but does not
collect or deliver anything yet: it exits with an error rather than pretend to run.

examples:
  tapio-collector-k8s --nats-url nats://nats:4222
  tapio-collector-k8s --kubeconfig ~/.kube/config --namespace team-a"""


class NotImplementedYetError(TapioError):
    """The component's runtime is not written yet."""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(PROG, DESCRIPTION, EPILOG)
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig file (default: in-cluster service account, then ~/.kube/config)",
    )
    parser.add_argument(
        "--namespace", metavar="NS", help="watch one namespace only (default: all namespaces)"
    )
    parser.add_argument("--resync-seconds", metavar="N", help="full relist period in seconds (default 600)")
    add_common_arguments(parser)
    return parser


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    load_common(args, COMPONENT)  # validates flags, environment and the config file
    raise NotImplementedYetError(f"{COMPONENT} is not implemented yet (configuration is valid)")


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)
