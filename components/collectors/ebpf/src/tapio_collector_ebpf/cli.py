"""Command line of `tapio-collector-ebpf`: its flags and YAML section -> EbpfSettings, `--dump-bpf`,
then the collector harness runs the EbpfSource."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from tapio_collector import CollectorSpec, collector_main
from tapio_collector.cli import build_parser
from tapio_collector_ebpf import programs
from tapio_collector_ebpf.adapters import kernel
from tapio_collector_ebpf.adapters.bcc_session import build_text
from tapio_collector_ebpf.settings import EbpfSettings
from tapio_collector_ebpf.source import EbpfSource
from tapio_common.cli import run_cli
from tapio_common.config import CommonConfig, add_settings_arguments, describe_settings, load_settings

COMPONENT = "ebpf-collector"
_S = EbpfSettings().severity


def _programs_help() -> str:
    rows = [
        f"  {p.name:<15} {', '.join(f'{c}:{e}' for c, e in p.tracepoints)}\n  {'':<15} -> {p.emits}: {p.help}"
        for p in programs.PROGRAMS
    ]
    return "programs (tracepoints -> event types):\n" + "\n".join(rows)


SETTINGS_HELP = f"""\
{_programs_help()}
  A tracepoint this kernel lacks is reported at start (log and /readyz) and its program is left out.

aggregation and loss:
  exec, exit, retransmits, resets and connects are counted in kernel maps per (cgroup, comm, exit
  status) or per (cgroup, flow) and drained every --interval into one event each, with `count` and
  `window_ns`. OOM kills and connects slower than --latency-threshold go through a ring buffer,
  one event each. Samples the kernel could not store (ring buffer or map full) are counted there,
  exposed as tapio_ebpf_collector_kernel_samples_lost_total{{reason}} (and events_dropped_total
  {{reason="kernel_..."}}) and carried by the
  events of that poll as attributes kernel_lost_samples / kernel_lost_samples_total.

severity (defaults):
  oom_kill critical; process_exit error when killed by SIGSEGV/SIGABRT/SIGKILL/..., warning on a
  non-zero code or another signal; tcp_retransmit warning >= {_S.retransmit_warning_per_s:g}/s, error >= {_S.retransmit_error_per_s:g}/s;
  tcp_reset warning >= {_S.reset_warning_per_s:g}/s, error >= {_S.reset_error_per_s:g}/s; failed connects warning >= {_S.connect_failed_warning_per_s:g}/s,
  error >= {_S.connect_failed_error_per_s:g}/s; connect latency warning >= {_S.latency_warning_ns / 1e9:g} s, error >= {_S.latency_error_ns / 1e9:g} s
  (the flags below; YAML section `severity:`).

containers:
  cgroup id -> cgroup v2 path -> container id (containerd, CRI-O, Docker, podman layouts) -> pod uid;
  events carry context.container_id (as Kubernetes writes it), pod_uid, cgroup_id, pid, comm, node.

{describe_settings(EbpfSettings, COMPONENT)}

needs: root (or CAP_BPF + CAP_PERFMON), tracefs mounted, kernel headers for bcc (make setup)."""

EXAMPLES = """\
  sudo tapio-collector-ebpf --nats-url nats://nats:4222
  sudo tapio-collector-ebpf --programs oom,tcp_retransmit --interval 5 --latency-warning 0.2
  sudo tapio-collector-ebpf --dump-bpf            # the BPF C this kernel would get, then exit"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_arguments(parser, EbpfSettings, "eBPF collector")
    parser.add_argument(
        "--dump-bpf",
        action="store_true",
        help="print the BPF C text for this kernel and exit (needs tracefs)",
    )


def load(args: argparse.Namespace, section: Mapping[str, Any]) -> EbpfSettings:
    """Flags > environment > the YAML section > defaults (tapio_common.config.load_settings)."""
    return load_settings(EbpfSettings, section, args=args, name=COMPONENT)


def make_source(args: argparse.Namespace, cfg: CommonConfig) -> EbpfSource:
    return EbpfSource(load(args, cfg.section))


SPEC = CollectorSpec(
    prog="tapio-collector-ebpf",
    component=COMPONENT,
    description="""\
eBPF collector: bcc tracepoint programs on this node's kernel (process exec/exit, OOM kills, TCP
connect latency, failed connects, retransmits, resets), aggregated in kernel, mapped to
containers and pods, published to tapio.events.ebpf.{type}.{severity}.""",
    make_source=make_source,
    examples=EXAMPLES,
    settings_help=SETTINGS_HELP,
    add_arguments=add_arguments,
)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if "--dump-bpf" in args_list:
        return run_cli(SPEC.prog, _dump, args_list)
    return collector_main(SPEC, args_list)


def _dump(args_list: Sequence[str]) -> int:
    args = build_parser(SPEC).parse_args(args_list)
    settings = load(args, {})
    kernel.check_privileges()
    asm = build_text(programs.select(settings.programs), settings.limits())
    for p, (cat, ev) in asm.missing:
        print(f"// not loaded: {p.name} (tracepoint {cat}:{ev} missing on this kernel)")
    print(asm.text, end="")
    return 0
