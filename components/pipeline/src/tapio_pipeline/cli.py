"""Command line of `tapio-pipeline`: flags, configuration and start-up."""

from __future__ import annotations

from tapio_common.cli import Flag, PendingComponent

CLI = PendingComponent(
    prog="tapio-pipeline",
    component="pipeline",
    description="""\
Pipeline processor: consumes tapio.events.>, enriches events with topology context, filters and routes
them to tapio.processed.{type}.{destination}.""",
    examples="""\
  tapio-pipeline --nats-url nats://nats:4222 --routes routes.yaml""",
    flags=(Flag("--routes", "FILE", "routing rules file (YAML)"),),
)
build_parser = CLI.build_parser
main = CLI.main
