"""Command line of `tapio-pipeline`: run the processor, or `--check FILE` to validate a rule file."""

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
    load_settings,
)
from tapio_common.logging import configure_logging
from tapio_pipeline.settings import PUBLISHER_SECTION, PipelineSettings

PROG = "tapio-pipeline"

DESCRIPTION = """\
Pipeline processor: consumes tapio.events.> (durable pull consumer `pipeline` on TAPIO_EVENTS),
enriches every event with what the Kubernetes collector's pod events taught it (workload, owners,
labels, node, for events that name only a container id, a cgroup id or a pod), applies the rules of
--rules FILE (drop, sample 1/N, redact, route) and publishes the events of each destination,
batched, to tapio.processed.{source}.{destination}. An input message is acked only after its
outputs are stored; a redelivered message produces the same message ids (no duplicates). An event
no rule routes goes to the file's `default` destinations, or is counted as unrouted (it stays in
TAPIO_EVENTS). Undecodable messages go to tapio.dlq.pipeline with the reason.

Every replica rebuilds its pod index from the pod events of TAPIO_EVENTS at start (--index-history).
SIGHUP reloads the rule file between two messages (a bad file keeps the old rules, one log line);
SIGTERM stops after the messages in hand. Without a NATS URL an embedded JetStream is started under
<data dir>/jetstream and the streams are provisioned."""

RULES_HELP = """\
the rule file (YAML):
  destinations: [siem, archive, metrics]   # names used in subjects: [a-z0-9_-], at least one
  default: [archive]                       # where an event no rule routes goes (optional)
  rules:                                   # in order; every matching rule applies its action
    - name: no-debug                       # unique; used in metrics and logs
      match: {severity: debug}
      drop: true                           # goes nowhere (events_dropped_total{reason="rule"})
    - name: exec-1-in-100
      match: {source: ebpf, type: process_exec}
      sample: 100                          # keeps 1 in 100, chosen by event id: a replay keeps the same
    - name: hide-secrets
      match: {source: [ebpf, systemd]}
      redact: [cmdline, env]               # attribute values become "[redacted]"
    - name: security
      match: {min_severity: error, namespace: ["team-*", payments]}
      route: [siem, archive]
    - name: frontends
      match: {labels: {app: web, tier: "front*"}, node: "node-?"}
      route: [metrics]
      final: true                          # later rules are not applied
  match keys: source (k8s|systemd|ebpf|cni), type, action, severity, min_severity, namespace, node,
  labels (all given must hold; a string or a list; globs with * ? [])."""

EXAMPLES = """\
examples:
  tapio-pipeline --check routes.yaml                      # validate a rule file and exit
  tapio-pipeline --rules routes.yaml                      # embedded JetStream (development)
  NATS_URL=nats://nats:4222 tapio-pipeline --rules /etc/tapio/routes.yaml --config /etc/tapio/tapio.yaml
  kill -HUP $(pidof tapio-pipeline)                       # reload the rules"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        PROG,
        DESCRIPTION,
        RULES_HELP + "\n\n" + describe_settings(PipelineSettings, "pipeline") + "\n\n" + EXAMPLES,
    )
    parser.add_argument(
        "--check", metavar="FILE", help="validate a rule file, print a summary and exit (0: valid)"
    )
    add_settings_arguments(parser, PipelineSettings, "pipeline options (YAML section pipeline)")
    add_common_arguments(parser)
    return parser


def check(path: str) -> int:
    from tapio_pipeline.service.app import read_rules

    rules = read_rules(path)
    print(
        f"{path}: valid: {len(rules.rules)} rules, destinations {', '.join(rules.destinations)}"
        + (
            f", default {', '.join(rules.default)}"
            if rules.default
            else ", no default (unrouted events are counted)"
        )
    )
    return 0


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.check:
        return check(args.check)
    from tapio_pipeline.service.app import serve

    cfg = load_common(args, "pipeline")
    configure_logging(cfg.log_level, cfg.log_format)
    settings = load_settings(
        PipelineSettings, cfg.section, args=args, allow=(PUBLISHER_SECTION,), name="pipeline"
    )
    anyio.run(serve, cfg, settings, backend_options={"use_uvloop": True})
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(PROG, _main, argv)
