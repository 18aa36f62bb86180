"""Command line of `tapio-siem-exporter`: flags, configuration and start-up."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import anyio

from tapio_common.cli import make_parser, run_cli
from tapio_common.config import (
    add_common_arguments,
    add_settings_arguments,
    describe_settings,
    load_common,
)
from tapio_common.logging import configure_logging
from tapio_exporters.service.settings import SECTION, ExporterSettings
from tapio_exporters.service.sinkspec import SINK_HELP, parse_flag

PROG = "tapio-siem-exporter"
COMPONENT = "siem-exporter"

DESCRIPTION = """\
SIEM exporter: consumes tapio.correlations.> (durable consumer `siem-exporter` on TAPIO_CORRELATIONS),
turns every incident into an Alert with a lifecycle, publishes it to tapio.alerts.{severity}.{component}
(Nats-Msg-Id = alert id:revision:state) and delivers it to every configured sink.

Lifecycle: the first revision of an incident FIRES its alert; later revisions UPDATE it (same alert id,
the revision carried); when no new member joined the incident within its window (event time; see
resolve_after) the alert is RESOLVED. Severity comes from the type and confidence (README "Severity").

Delivery is at least once: the alerts of a batch are stored in TAPIO_ALERTS, then handed to every sink
from memory, and the correlations are acked once each receiver confirmed (HEC indexer ack, _bulk item
status, Alertmanager 2xx, the syslog receiver's orderly close after reading the batch). A sink that
fails falls behind and never blocks the others: it catches up from TAPIO_ALERTS at its own position
(kept in its durable consumer `siem-exporter-<sink>`, nats-server 2.14+; older servers: each sink reads
the stream through it), retried with backoff, then goes live again; alerts a receiver refuses for good
go to tapio.dlq.siem-exporter. State (open alerts, sink positions) survives a restart. Run ONE exporter
process per installation (its Deployment has one replica; --replicas is about the streams)."""

EPILOG = f"""\
{SINK_HELP}

{describe_settings(ExporterSettings, SECTION)}
  (the --sink flags add to `sinks:`; `publisher:` holds the publisher's own settings)

examples:
  tapio-siem-exporter --sink console                         # embedded JetStream, print alerts
  NATS_URL=nats://nats:4222 HEC_TOKEN=... tapio-siem-exporter \\
      --sink 'hec:splunk=https://splunk:8088?token_env=HEC_TOKEN&ack=true' \\
      --sink 'elastic=https://es:9200?api_key_env=ES_API_KEY' --sink 'cef=tls://arcsight:6514?tls_ca=/etc/ca.pem'
  tapio-siem-exporter --config /etc/tapio/exporter.yaml --log-format json"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(PROG, DESCRIPTION, EPILOG)
    g = parser.add_argument_group("exporter options")
    g.add_argument(
        "--sink",
        action="append",
        metavar="TYPE[:NAME]=URL[?KEY=VALUE&...]",
        help="a sink, repeatable (see sinks below); adds to the sinks of --config",
    )
    add_settings_arguments(parser, ExporterSettings, "exporter settings")
    add_common_arguments(parser)
    return parser


def _main(argv: Sequence[str]) -> int:
    from tapio_exporters.service.app import serve

    args = build_parser().parse_args(argv)
    cfg = load_common(args, COMPONENT)
    configure_logging(cfg.log_level, cfg.log_format)
    extra = [parse_flag(s) for s in args.sink or []]
    settings = ExporterSettings.load(cfg.section, args=args, extra_sinks=extra)
    anyio.run(serve, cfg, settings)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)
