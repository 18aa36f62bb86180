"""Command line of `tapio-correlator serve` (the NATS runner) and `tapio-correlator demo`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import anyio

from tapio_common.config import (
    ENV_HELP,
    add_common_arguments,
    add_settings_arguments,
    describe_settings,
    load_common,
    load_settings,
)
from tapio_common.logging import configure_logging
from tapio_correlator.errors import CorrelatorError
from tapio_correlator.service.settings import PUBLISHER_SECTION, STATE_BUCKET, RunnerSettings

SERVE_DESCRIPTION = """\
Consumes tapio.events.> (durable pull consumer `correlator` on TAPIO_EVENTS), correlates, and
publishes each new or updated incident to tapio.correlations.{confidence}.{type} with
Nats-Msg-Id = id:revision. Input messages are acked only after the correlations they produced
are stored. A message that cannot be decoded goes to tapio.dlq.correlator (Tapio-Error header).
The engine state is saved to the JetStream KV bucket TAPIO_CORRELATOR_STATE (<PREFIX>_CORRELATOR_STATE
with another NATS_SUBJECT_PREFIX); after a crash the
runner restores it and replays the events it had seen since, publishing nothing twice.

Without a NATS URL an embedded JetStream (nats-server) is started under <data dir>/jetstream and
the streams are provisioned. Stop with Ctrl-C or SIGTERM: the pull in hand is finished, the state
saved, and everything closed."""

SERVE_EXAMPLES = """\
examples:
  tapio-correlator serve                                  # embedded JetStream on port 4222
  NATS_URL=nats://nats:4222 tapio-correlator serve --provision --replicas 3
  tapio-correlator serve --config /etc/tapio/correlator.yaml --log-format json
  tapio-correlator serve --reorder-slack 2 --crash-min-restarts 5

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
        epilog=describe_settings(RunnerSettings, "correlator") + "\n\n" + SERVE_EXAMPLES + ENV_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_settings_arguments(sp, RunnerSettings, "correlator options (YAML section correlator)")
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
    settings = load_settings(
        RunnerSettings, cfg.section, args=args, allow=(PUBLISHER_SECTION,),
        defaults={"state_bucket": cfg.subjects.bucket(STATE_BUCKET)},
    )  # fmt: skip
    anyio.run(serve, cfg, settings)
    return 0


def run_demo_command(args: argparse.Namespace) -> int:
    from tapio_common.scenarios import public_root
    from tapio_correlator.demo import run_demo

    configure_logging(args.log_level)
    if args.speed <= 0:
        raise CorrelatorError(f"--speed must be > 0, got {args.speed}")
    root = Path(args.scenarios) if args.scenarios else public_root()
    missed = anyio.run(run_demo, root, args.speed)
    return 1 if missed else 0
