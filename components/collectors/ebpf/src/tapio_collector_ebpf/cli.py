"""Command line of `tapio-collector-ebpf`: its flags and YAML section -> EbpfSettings, `--dump-bpf`,
then the collector harness runs the EbpfSource."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import cattrs

from tapio_collector import CollectorSpec, collector_main
from tapio_collector.cli import build_parser
from tapio_collector_ebpf import programs
from tapio_collector_ebpf.adapters.bcc_session import build_text
from tapio_collector_ebpf.settings import EbpfSettings
from tapio_collector_ebpf.source import EbpfSource
from tapio_common.cli import run_cli
from tapio_common.config import CommonConfig
from tapio_common.errors import ConfigError

COMPONENT = "ebpf-collector"
_D = EbpfSettings()
_S = _D.severity


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
  `window_ns`. OOM kills and connects slower than --latency-threshold-ms go through a ring buffer,
  one event each. Samples the kernel could not store (ring buffer or map full) are counted there,
  exposed as tapio_ebpf_collector_kernel_samples_lost_total{{reason}} (and events_dropped_total
  {{reason="kernel_..."}}) and carried by the
  events of that poll as attributes kernel_lost_samples / kernel_lost_samples_total.

severity (defaults):
  oom_kill critical; process_exit error when killed by SIGSEGV/SIGABRT/SIGKILL/..., warning on a
  non-zero code or another signal; tcp_retransmit warning >= {_S.retransmit_warning_per_s:g}/s, error >= {_S.retransmit_error_per_s:g}/s;
  tcp_reset warning >= {_S.reset_warning_per_s:g}/s, error >= {_S.reset_error_per_s:g}/s; failed connects warning >= {_S.connect_failed_warning_per_s:g}/s,
  error >= {_S.connect_failed_error_per_s:g}/s; connect latency warning >= {_S.latency_warning_ns / 1e6:g} ms, error >= {_S.latency_error_ns / 1e6:g} ms.

containers:
  cgroup id -> cgroup v2 path -> container id (containerd, CRI-O, Docker, podman layouts) -> pod uid;
  events carry context.container_id (as Kubernetes writes it), pod_uid, cgroup_id, pid, comm, node.

YAML (section `{COMPONENT}:`, same names as the flags with underscores; a flag wins):
  {COMPONENT}:
    programs: [exec, exit, oom, tcp_connect, tcp_retransmit, tcp_reset]
    interval_s: 1.0
    latency_threshold_ns: 100000000
    severity: {{retransmit_warning_per_s: 1, latency_warning_ns: 100000000}}

needs: root (or CAP_BPF + CAP_PERFMON), tracefs mounted, kernel headers for bcc (make setup)."""

EXAMPLES = """\
  sudo tapio-collector-ebpf --nats-url nats://nats:4222
  sudo tapio-collector-ebpf --programs oom,tcp_retransmit --interval 5
  sudo tapio-collector-ebpf --dump-bpf            # the BPF C this kernel would get, then exit"""

# flag -> (settings path, converter)
_FLAGS: dict[str, tuple[tuple[str, ...], Any]] = {
    "programs": (("programs",), lambda v: tuple(p for p in v.split(",") if p)),
    "interval": (("interval_s",), float),
    "poll_ms": (("poll_ms",), int),
    "latency_threshold_ms": (("latency_threshold_ns",), lambda v: int(float(v) * 1e6)),
    "default_runtime": (("default_runtime",), str),
    "ringbuf_pages": (("ringbuf_pages",), int),
    "flow_entries": (("flow_entries",), int),
    "proc_entries": (("proc_entries",), int),
    "retransmit_warning_per_s": (("severity", "retransmit_warning_per_s"), float),
    "retransmit_error_per_s": (("severity", "retransmit_error_per_s"), float),
    "reset_warning_per_s": (("severity", "reset_warning_per_s"), float),
    "reset_error_per_s": (("severity", "reset_error_per_s"), float),
    "latency_warning_ms": (("severity", "latency_warning_ns"), lambda v: int(float(v) * 1e6)),
    "latency_error_ms": (("severity", "latency_error_ns"), lambda v: int(float(v) * 1e6)),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("eBPF collector")
    g.add_argument(
        "--programs",
        metavar="LIST",
        help=f"comma-separated programs to load (default: all: {','.join(programs.BY_NAME)})",
    )
    g.add_argument(
        "--interval",
        metavar="SECONDS",
        help=f"aggregation window: maps are drained this often (default {_D.interval_s:g})",
    )
    g.add_argument("--poll-ms", metavar="MS", help=f"ring-buffer poll timeout (default {_D.poll_ms})")
    g.add_argument(
        "--latency-threshold-ms",
        metavar="MS",
        help=f"connects at least this slow become one tcp_connect_latency event each (default {_D.latency_threshold_ns / 1e6:g})",
    )
    g.add_argument(
        "--default-runtime",
        metavar="NAME",
        help=f"runtime of bare 64-hex cgroup directories (default {_D.default_runtime})",
    )
    g.add_argument(
        "--ringbuf-pages",
        metavar="N",
        help=f"ring buffer size in pages, a power of 2 (default {_D.ringbuf_pages})",
    )
    g.add_argument(
        "--flow-entries",
        metavar="N",
        help=f"distinct (cgroup, kind, flow) per window (default {_D.flow_entries})",
    )
    g.add_argument(
        "--proc-entries",
        metavar="N",
        help=f"distinct (cgroup, comm, status) per window (default {_D.proc_entries})",
    )
    g.add_argument(
        "--retransmit-warning-per-s",
        metavar="N",
        help=f"retransmits per second of a flow for warning (default {_S.retransmit_warning_per_s:g})",
    )
    g.add_argument(
        "--retransmit-error-per-s",
        metavar="N",
        help=f"retransmits per second of a flow for error (default {_S.retransmit_error_per_s:g})",
    )
    g.add_argument(
        "--reset-warning-per-s",
        metavar="N",
        help=f"resets (and failed connects) per second for warning (default {_S.reset_warning_per_s:g})",
    )
    g.add_argument(
        "--reset-error-per-s",
        metavar="N",
        help=f"resets per second for error (default {_S.reset_error_per_s:g})",
    )
    g.add_argument(
        "--latency-warning-ms",
        metavar="MS",
        help=f"connect latency for warning (default {_S.latency_warning_ns / 1e6:g})",
    )
    g.add_argument(
        "--latency-error-ms",
        metavar="MS",
        help=f"connect latency for error (default {_S.latency_error_ns / 1e6:g})",
    )
    g.add_argument(
        "--dump-bpf",
        action="store_true",
        help="print the BPF C text for this kernel and exit (needs tracefs)",
    )


_converter = cattrs.Converter(forbid_extra_keys=True)


def load_settings(args: argparse.Namespace, section: Mapping[str, Any]) -> EbpfSettings:
    """Defaults < the YAML section < flags; ConfigError naming the key for anything bad."""
    doc: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in section.items()}
    for flag, (path, convert) in _FLAGS.items():
        raw = getattr(args, flag, None)
        if raw is None:
            continue
        try:
            value = convert(raw)
        except ValueError as e:
            raise ConfigError(f"--{flag.replace('_', '-')}: bad value {raw!r}") from e
        target = doc
        for p in path[:-1]:
            target = target.setdefault(p, {})
        target[path[-1]] = value
    try:
        return _converter.structure(doc, EbpfSettings)
    except cattrs.ClassValidationError as e:
        raise ConfigError(f"{COMPONENT}: {_first(e)}") from e
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{COMPONENT}: {e}") from e


def _first(e: BaseException) -> str:
    while isinstance(e, cattrs.BaseValidationError) and e.exceptions:
        e = e.exceptions[0]
    return str(e)


def make_source(args: argparse.Namespace, cfg: CommonConfig) -> EbpfSource:
    return EbpfSource(load_settings(args, cfg.section))


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
    settings = load_settings(args, {})
    asm = build_text(programs.select(settings.programs), settings.limits())
    for p, (cat, ev) in asm.missing:
        print(f"// not loaded: {p.name} (tracepoint {cat}:{ev} missing on this kernel)")
    print(asm.text, end="")
    return 0
