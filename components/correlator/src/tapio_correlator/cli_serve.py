"""Command line of `tapio-correlator serve` (the NATS runner) and `tapio-correlator demo`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import anyio

from tapio_common.config import ENV_HELP, add_common_arguments, load_common
from tapio_common.logging import configure_logging
from tapio_correlator.errors import CorrelatorError
from tapio_correlator.service.settings import RunnerSettings

SERVE_DESCRIPTION = """\
Consumes tapio.events.> (durable pull consumer `correlator` on TAPIO_EVENTS), correlates, and
publishes each new or updated incident to tapio.correlations.{confidence}.{type} with
Nats-Msg-Id = id:revision. Input messages are acked only after the correlations they produced
are stored. A message that cannot be decoded goes to tapio.dlq.correlator (Tapio-Error header).
The engine state is saved to the JetStream KV bucket TAPIO_CORRELATOR_STATE; after a crash the
runner restores it and replays the events it had seen since, publishing nothing twice.

Without a NATS URL an embedded JetStream (nats-server) is started under <data dir>/jetstream and
the streams are provisioned. Stop with Ctrl-C or SIGTERM: the pull in hand is finished, the state
saved, and everything closed."""

SERVE_EPILOG = """\
correlator settings (the `correlator:` section of --config, or these flags):
  fetch_batch, fetch_timeout, idle_advance, snapshot_interval, snapshot_events, state_bucket,
  provision, replicas, embedded_port, reorder_slack

examples:
  tapio-correlator serve                                  # embedded JetStream on port 4222
  NATS_URL=nats://nats:4222 tapio-correlator serve --provision --replicas 3
  tapio-correlator serve --config /etc/tapio/correlator.yaml --log-format json

"""

DEMO_DESCRIPTION = """\
Starts an embedded JetStream and the correlator, publishes the public scenarios' events one
scenario after the other (paced by their timestamps, --speed times faster), prints every
correlation as the correlator publishes it, and at the end checks the expected incidents."""


def add_serve_parser(sub: Any) -> None:
    sp = sub.add_parser(
        "serve",
        help="consume events from NATS JetStream, publish correlations (default)",
        description=SERVE_DESCRIPTION,
        epilog=SERVE_EPILOG + ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = sp.add_argument_group("correlator options")
    g.add_argument(
        "--provision",
        action="store_true",
        default=None,
        help="create/update the streams and durable consumers on start (always with the embedded server)",
    )
    g.add_argument(
        "--replicas", type=int, help="stream replicas when provisioning: 1, or 3 in a cluster (default 1)"
    )
    g.add_argument(
        "--embedded-port", type=int, help="port of the embedded JetStream (default 4222; 0 = any free port)"
    )
    g.add_argument("--fetch-batch", type=int, help="messages per pull request (default 64)")
    g.add_argument(
        "--snapshot-interval",
        type=float,
        metavar="SECONDS",
        help="save the engine state at least this often (default 10)",
    )
    g.add_argument(
        "--reorder-slack",
        type=float,
        metavar="SECONDS",
        help="how long the engine waits for out-of-order events; adds to the latency (default 0.5)",
    )
    add_common_arguments(sp)  # fmt: skip


def add_demo_parser(sub: Any) -> None:
    dp = sub.add_parser(
        "demo",
        help="play the public scenarios end to end through an embedded JetStream",
        description=DEMO_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dp.add_argument(
        "--scenarios", metavar="DIR", help="folder of scenario folders (default: tests/scenarios/public)"
    )
    dp.add_argument(
        "--speed", type=float, default=120.0, help="event time runs this many times faster (default 120)"
    )
    dp.add_argument("--log-level", default="warning", help="log level of the components (default warning)")


def run_serve(args: argparse.Namespace) -> int:
    from tapio_correlator.service.app import serve

    cfg = load_common(args, "correlator")
    configure_logging(cfg.log_level, cfg.log_format)
    settings = RunnerSettings.from_section(
        cfg.section,
        provision=args.provision,
        replicas=args.replicas,
        embedded_port=args.embedded_port,
        fetch_batch=args.fetch_batch,
        snapshot_interval=args.snapshot_interval,
        reorder_slack=args.reorder_slack,
    )
    anyio.run(serve, cfg, settings)
    return 0


def run_demo_command(args: argparse.Namespace) -> int:
    from tapio_correlator.demo import default_scenarios, run_demo

    configure_logging(args.log_level)
    if args.speed <= 0:
        raise CorrelatorError(f"--speed must be > 0, got {args.speed}")
    root = Path(args.scenarios) if args.scenarios else default_scenarios()
    missed = anyio.run(run_demo, root, args.speed)
    return 1 if missed else 0
