"""Command line of `tapio-collector-ebpf`: flags, configuration and start-up."""

from __future__ import annotations

from tapio_common.cli import Flag, PendingComponent

CLI = PendingComponent(
    prog="tapio-collector-ebpf",
    component="ebpf-collector",
    description="""\
eBPF collector: bcc tracepoint programs (sched_process_exec/exit, oom:mark_victim,
tcp:tcp_retransmit_skb, sock:inet_sock_set_state) with in-kernel aggregation; publishes to
tapio.events.ebpf.{type}.{severity}. Needs root, kernel headers and tracefs.""",
    examples="""\
  sudo tapio-collector-ebpf --programs oom,tcp_retransmit""",
    flags=(
        Flag("--programs", "LIST", "comma-separated programs to load (default: all)"),
        Flag("--aggregate-ms", "MS", "in-kernel aggregation window in milliseconds (default 1000)"),
    ),
)
build_parser = CLI.build_parser
main = CLI.main
