"""Command line of `tapio-siem-exporter`: flags, configuration and start-up."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import anyio

from tapio_common.cli import make_parser, run_cli
from tapio_common.config import add_common_arguments, load_common
from tapio_common.logging import configure_logging
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

Delivery is at least once: a correlation is acked only after its alerts are stored in TAPIO_ALERTS, and
each sink reads TAPIO_ALERTS through its own durable consumer `siem-exporter-<sink>`, acking an alert
only once the receiver confirmed it (HEC indexer ack, _bulk item status, Alertmanager 2xx, the syslog
receiver's orderly close after reading the batch). A sink that is down holds its alerts in the stream,
retried with backoff, and never blocks the others; alerts a receiver refuses for good go to
tapio.dlq.siem-exporter. State (open alerts) is rebuilt from TAPIO_ALERTS on start."""

EPILOG = f"""\
{SINK_HELP}

exporter settings (the `siem-exporter:` section of --config; a flag wins):
  sinks               list of sink mappings (keys as above), e.g.
                        sinks: [{{type: hec, name: splunk, url: "https://splunk:8088", token_env: HEC_TOKEN, ack: true}}]
  runbook_template    e.g. https://runbooks.example.com/tapio/{{type}}?ns={{namespace}}
                      fields: type, component, namespace, severity, alert_id, correlation_id
  labels              extra labels put on every alert (mapping)
  resolve_after       seconds without a new member before an incident resolves: one number for every
                      type, or a mapping of type -> seconds plus `default` (defaults: the correlator's
                      windows, 2-10 min; 600 for other types)
  state_lookback      seconds of TAPIO_ALERTS read back on start (86400; at least the longest window)
  fetch_batch (500), fetch_timeout (1.0 s), idle_advance (2.0 s: a quiet input lets event time follow
  the clock), retry_max (30 s between attempts of a failing sink), provision, replicas, publisher

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
    g.add_argument("--runbook-template", metavar="URL", help="runbook URL template (see below)")
    g.add_argument("--resolve-after", type=float, metavar="SECONDS", help="one resolve window for every type")
    g.add_argument(
        "--provision", action="store_true", default=None, help="create/update the streams on start"
    )
    g.add_argument("--replicas", type=int, metavar="N", help="stream replicas when provisioning (default 1)")
    add_common_arguments(parser)
    return parser


def _main(argv: Sequence[str]) -> int:
    from tapio_exporters.service.app import serve
    from tapio_exporters.service.settings import ExporterSettings

    args = build_parser().parse_args(argv)
    cfg = load_common(args, COMPONENT)
    configure_logging(cfg.log_level, cfg.log_format)
    section = dict(cfg.section)
    sinks = list(section.get("sinks") or []) + [parse_flag(s) for s in args.sink or []]
    overrides = {
        "sinks": sinks,
        "runbook_template": args.runbook_template,
        "resolve_after": args.resolve_after,
        "provision": args.provision,
        "replicas": args.replicas,
    }
    settings = ExporterSettings.from_section(section, getattr(args, "config", None) or "config", overrides)
    anyio.run(serve, cfg, settings)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)
