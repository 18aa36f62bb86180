"""Command line of `tapio-siem-exporter`: flags, configuration and start-up."""

from __future__ import annotations

from tapio_common.cli import Flag, PendingComponent

CLI = PendingComponent(
    prog="tapio-siem-exporter",
    component="siem-exporter",
    description="""\
SIEM exporter: consumes tapio.correlations.>, publishes alerts to tapio.alerts.{severity}.{component} and
delivers them to Splunk HEC, Elastic (ECS), CEF, RFC 5424 syslog and webhook receivers.""",
    examples="""\
  tapio-siem-exporter --sink syslog+tcp://siem:6514""",
    flags=(
        Flag(
            "--sink",
            "URL",
            "destination, repeatable: hec+https://host:8088, ecs+https://es:9200, syslog+tcp://host:514, cef+udp://host:514, webhook+https://...",
        ),
    ),
)
build_parser = CLI.build_parser
main = CLI.main
