"""Command line of `tapio-collector-systemd`: flags, configuration and start-up."""

from __future__ import annotations

from tapio_common.cli import Flag, PendingComponent

CLI = PendingComponent(
    prog="tapio-collector-systemd",
    component="systemd-collector",
    description="""\
systemd collector: follows unit state changes over D-Bus (org.freedesktop.systemd1 PropertiesChanged)
and publishes them to tapio.events.systemd.{service}.{state}.""",
    examples="""\
  tapio-collector-systemd --unit 'kubelet.service' --unit 'containerd.service'""",
    flags=(
        Flag("--unit", "PATTERN", "unit glob to follow, repeatable (default: all service units)"),
        Flag("--bus", "ADDRESS", "D-Bus address of the system bus (default: the system bus)"),
    ),
)
build_parser = CLI.build_parser
main = CLI.main
