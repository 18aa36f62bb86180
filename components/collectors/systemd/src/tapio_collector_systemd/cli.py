"""Command line of `tapio-collector-systemd`: the collector harness around the systemd Source."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tapio_collector import CollectorSpec, collector_main
from tapio_collector_systemd.settings import COMPONENT, ENV_BUS, SETTINGS_HELP, add_arguments, load
from tapio_collector_systemd.source import SystemdSource
from tapio_common.config import CommonConfig

DESCRIPTION = """\
systemd collector: follows every state change of the node's units over D-Bus (the systemd
manager's signals, no systemctl) and publishes one event per transition to
tapio.events.systemd.{service}.{state} (e.g. tapio.events.systemd.kubelet.failed), with the
previous state, result, exit code/status and restart count; a failed unit carries its last
journal lines. At start each followed unit's current state is published once (attribute
initial=true); after a restart or reconnect only what changed meanwhile."""

EXAMPLES = f"""\
  tapio-collector-systemd --nats-url nats://nats:4222
  tapio-collector-systemd --unit 'kube*.service,containerd.service' --exclude-unit kube-proxy.service
  {ENV_BUS}=unix:path=/host/run/dbus/system_bus_socket tapio-collector-systemd --journal-root /host"""


def make_source(args: argparse.Namespace, cfg: CommonConfig) -> SystemdSource:
    return SystemdSource(load(args, cfg.section or {}))


SPEC = CollectorSpec(
    prog="tapio-collector-systemd",
    component=COMPONENT,
    description=DESCRIPTION,
    make_source=make_source,
    examples=EXAMPLES,
    settings_help=SETTINGS_HELP,
    add_arguments=add_arguments,
    publisher={"batch_max_events": 1},  # one message per event: Nats-Msg-Id = the event's own id
)


def main(argv: Sequence[str] | None = None) -> int:
    return collector_main(SPEC, argv)
