"""Command line of `tapio-collector-cni`: the harness's CLI with the CNI collector's settings."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tapio_collector import CollectorSpec, collector_main
from tapio_collector_cni.settings import add_arguments, from_sources
from tapio_collector_cni.source import CniSource
from tapio_common.config import CommonConfig

SETTINGS_HELP = """\
what is reported (per interface and direction, over one sampling window):
  packet_loss  drops >= --drops, or drops >= --min-count and drops/packets >= --loss-ratio
  errors       errors >= --errors, or errors >= --min-count and errors/packets >= --loss-ratio
  Defaults follow the correlator's network_degradation rule (loss ratio >= 1 % or >= 100 drops).
  ingress = received by the interface (rx drops, rx_missed, ingress/clsact qdisc drops, rx errors),
  egress = sent by it (tx drops, root qdisc drops, tx errors). Quiet interfaces produce nothing.
  Subject: tapio.events.cni.{interface}.{ingress|egress}; CNI configuration changes go to
  tapio.events.cni.{network}.config. A veth whose peer is in a pod's namespace carries the
  container id (context.container_id), pod UID (context.pod_uid, network.peer_pod) and a pid
  of a process in that namespace."""

EXAMPLES = """\
  tapio-collector-cni --nats-url nats://nats:4222 --interval 5
  tapio-collector-cni --interfaces 'eth*,cali*' --loss-ratio 0.005 --drops 50
  tapio-collector-cni --cni-conf-dir /host/etc/cni/net.d --proc /host/proc"""


def make_source(args: argparse.Namespace, cfg: CommonConfig) -> CniSource:
    return CniSource(from_sources(args, cfg.section))


SPEC = CollectorSpec(
    prog="tapio-collector-cni",
    component="cni-collector",
    description="""\
CNI collector: samples every network interface's counters each interval through netlink (packets,
bytes, drops, errors, qdisc drops), reports loss and errors per interface and direction, maps a
veth to the pod on its other end, and reports changes of the node's CNI configuration.""",
    make_source=make_source,
    examples=EXAMPLES,
    settings_help=SETTINGS_HELP,
    add_arguments=add_arguments,
)


def main(argv: Sequence[str] | None = None) -> int:
    return collector_main(SPEC, argv)
