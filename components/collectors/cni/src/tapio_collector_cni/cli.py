"""Command line of `tapio-collector-cni`: flags, configuration and start-up."""

from __future__ import annotations

from tapio_common.cli import Flag, PendingComponent

CLI = PendingComponent(
    prog="tapio-collector-cni",
    component="cni-collector",
    description="""\
CNI collector: samples interface counters (packets, drops, errors) of the node's and pods' network
interfaces and publishes loss findings to tapio.events.cni.{interface}.{direction}.""",
    examples="""\
  tapio-collector-cni --interval 5""",
    flags=(
        Flag("--interval", "SECONDS", "sampling interval (default 10)"),
        Flag("--interface", "GLOB", "interfaces to watch, repeatable (default: eth*, veth*, cni*)"),
    ),
)
build_parser = CLI.build_parser
main = CLI.main
