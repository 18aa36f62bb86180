"""Command line of `tapio-admin`: `streams apply` and `streams status` against a real NATS server."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio
import attrs
from nats.errors import Error as NatsError

from tapio_admin.render import render_report, render_status
from tapio_common.cli import make_parser, run_cli
from tapio_common.config import ENV_HELP, CommonConfig, add_common_arguments, load_common
from tapio_common.errors import ConfigError
from tapio_common.logging import configure_logging
from tapio_common.nats.connect import connect
from tapio_jetstream.errors import LayoutError
from tapio_jetstream.layout import production_layout
from tapio_jetstream.streams import apply_layout, layout_status

PROG = "tapio-admin"
COMPONENT = "admin"

DESCRIPTION = """\
Operator commands for Tapio's NATS JetStream topology (CONTRACT.md §3): the streams TAPIO_EVENTS,
TAPIO_CORRELATIONS, TAPIO_ALERTS, TAPIO_PROCESSED and TAPIO_DLQ with their production limits, and
the durable pull consumers correlator and pipeline (on TAPIO_EVENTS) and siem-exporter (on
TAPIO_CORRELATIONS), explicit ack, max_deliver 5. With --subject-prefix (NATS_SUBJECT_PREFIX) blue
they are BLUE_EVENTS, ... on blue.events.>, ...: one installation each on a shared NATS account.

commands:
  up               the whole product on this machine, on an embedded JetStream (make run)
  streams apply    create missing streams/consumers, update changed limits (idempotent)
  streams status   messages, bytes and consumer backlogs of every stream"""

EPILOG = """\
`streams` manages a real server: it needs NATS_URL or --nats-url (it never starts an embedded one).
`up` starts its own embedded JetStream and every component that can run here.

examples:
  tapio-admin up                                                          # make run
  tapio-admin up --only correlator,pipeline,siem-exporter
  HEC_TOKEN=... tapio-admin up --exporter-sink 'hec=https://splunk:8088?token_env=HEC_TOKEN&ack=true'
  tapio-admin streams apply --nats-url nats://nats:4222 --replicas 3     # 3-node cluster
  NATS_URL=nats://127.0.0.1:4222 tapio-admin streams apply --dry-run      # show the plan only
  tapio-admin streams status --nats-url nats://nats:4222 --nats-creds admin.creds
  tapio-admin streams apply --nats-url nats://nats:4222 --subject-prefix blue  # a 2nd installation
  bazel run //components/admin -- streams apply --nats-url nats://127.0.0.1:4222"""
SUB_EPILOG = EPILOG + "\n\n" + ENV_HELP

APPLY_HELP = """\
Create the five streams and the standard durable consumers, or bring their limits up to date.
Running it again changes nothing. An incompatible change (storage type, retention, ack policy)
is refused with an explanation and nothing is applied."""

UP_HELP = """\
Starts an embedded JetStream under <data dir>/jetstream (streams provisioned) and, each as its own
process against it: the correlator, the pipeline, the SIEM exporter with a console sink (alerts are
printed as they fire, update and resolve), and the collectors that can run on this host: eBPF and
CNI as root (bcc for eBPF), systemd when PID 1 is systemd, Kubernetes when a kubeconfig is found.
Each one left out is named with the reason. Prints where everything listens and where each log
goes (<data dir>/logs). Ctrl-C stops the collectors, then the consumers, then the server; state
(streams, snapshots, spools) stays in the data dir, so the next `up` carries on."""

STATUS_HELP = "Show every stream's messages and bytes, and each consumer's pending / ack pending counts."


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(PROG, DESCRIPTION, EPILOG)
    groups = parser.add_subparsers(dest="group", metavar="GROUP", required=True)
    streams = groups.add_parser(
        "streams", help="JetStream streams and consumers", description=DESCRIPTION, epilog=SUB_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    commands = streams.add_subparsers(dest="command", metavar="COMMAND", required=True)
    apply = commands.add_parser(
        "apply", help="create or update streams and consumers", description=APPLY_HELP, epilog=SUB_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    apply.add_argument(
        "--replicas", type=int, default=1, metavar="N",
        help="stream replicas: 3 in a JetStream cluster, 1 on a single server (default 1)",
    )  # fmt: skip
    apply.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")
    apply.add_argument(
        "--limits-scale", type=float, default=1.0, metavar="F",
        help="multiply the message/byte limits (e.g. 0.01 for a small test server; default 1 = production)",
    )  # fmt: skip
    add_common_arguments(apply)
    status = commands.add_parser(
        "status", help="show messages, bytes and consumer backlogs", description=STATUS_HELP, epilog=SUB_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_common_arguments(status)
    upp = groups.add_parser(
        "up", help="run the whole product on this machine (embedded JetStream)", description=UP_HELP,
        epilog=SUB_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    upp.add_argument(
        "--rules", metavar="FILE", help="the pipeline's rule file (default: the shipped up_rules.yaml)"
    )
    upp.add_argument(
        "--nats-port", type=int, default=4222, metavar="PORT",
        help="port of the embedded JetStream (default 4222; taken: any free port)",
    )  # fmt: skip
    upp.add_argument(
        "--only", metavar="NAMES", default="",
        help="start only these components (comma-separated: correlator, pipeline, siem-exporter, "
        "ebpf-collector, cni-collector, systemd-collector, k8s-collector)",
    )  # fmt: skip
    upp.add_argument(
        "--exporter-sink", action="append", default=[], metavar="SPEC",
        help="one more sink of the SIEM exporter beside the console, repeatable; SPEC as its --sink "
        "(see tapio-siem-exporter --help), e.g. 'hec=http://127.0.0.1:8088?token_env=HEC_TOKEN'",
    )  # fmt: skip
    add_common_arguments(upp)
    return parser


async def _run(args: argparse.Namespace, cfg: CommonConfig) -> int:
    nats_cfg = attrs.evolve(cfg.nats, max_reconnects=0)
    nc = await connect(nats_cfg, PROG)
    try:
        js = nc.jetstream(timeout=10)
        if args.command == "apply":
            topo = production_layout(args.replicas, args.limits_scale, cfg.subjects)
            report = await apply_layout(js, args.replicas, layout=topo, dry_run=args.dry_run)
            print(render_report(report))
            return 1 if any(c.action == "refused" for c in report.changes) else 0
        print(render_status(await layout_status(js, production_layout(subjects=cfg.subjects))))
        return 0
    except NatsError as e:
        detail = str(e) or type(e).__name__
        raise LayoutError(f"JetStream request failed ({detail}): is JetStream enabled on the server?") from e
    finally:
        await nc.close()


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_common(args, COMPONENT, log_level_default="warning")  # the console is for results and alerts
    if args.group == "up":
        return _up(args, cfg)
    if not cfg.nats.urls:
        raise ConfigError(
            f"{PROG} manages a real NATS server: set NATS_URL or --nats-url (e.g. nats://nats:4222)"
        )
    if args.command == "apply" and args.replicas < 1:
        raise ConfigError(f"--replicas must be >= 1, not {args.replicas}")
    if args.command == "apply" and args.limits_scale <= 0:
        raise ConfigError(f"--limits-scale must be > 0, not {args.limits_scale}")
    configure_logging(cfg.log_level, cfg.log_format)
    if cfg.log_level == "warning":  # closing the connection at the end is not worth a warning line
        logging.getLogger("tapio_common.nats.connect").setLevel(logging.ERROR)
    code: int = anyio.run(_run, args, cfg, backend="asyncio")
    sys.stdout.flush()
    return code


def _up(args: argparse.Namespace, cfg: CommonConfig) -> int:
    from tapio_admin.up import DEFAULT_RULES, up

    configure_logging(cfg.log_level, cfg.log_format)  # warning unless set: the console is for alerts
    rules = Path(args.rules) if args.rules else DEFAULT_RULES
    if not rules.is_file():
        raise ConfigError(f"--rules {rules}: no such file")
    if not 0 <= args.nats_port <= 65535:
        raise ConfigError(f"--nats-port must be 0..65535, not {args.nats_port}")
    only = tuple(n.strip() for n in args.only.split(",") if n.strip())
    sinks = tuple(spec.strip() for spec in args.exporter_sink)
    if not all(sinks):  # the exporter itself checks each spec at start (up then names its error)
        raise ConfigError(
            "--exporter-sink needs a sink spec, e.g. 'hec=https://splunk:8088?token_env=HEC_TOKEN'"
        )
    anyio.run(
        lambda: up(cfg, rules=rules.resolve(), nats_port=args.nats_port, only=only, exporter_sinks=sinks)
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)
