"""The catalogue of BPF programs (which tracepoints, which `.c` file) and the assembly of the
program text bcc compiles: pure (file contents and tracepoint formats are passed in)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

Tracepoint = tuple[str, str]
"""(category, event), e.g. ("sched", "sched_process_exec")."""


@attrs.frozen
class Program:
    name: str
    define: str
    file: str
    tracepoints: tuple[Tracepoint, ...]
    emits: str
    help: str


PROGRAMS: tuple[Program, ...] = (
    Program(
        "exec",
        "PROG_EXEC",
        "process.c",
        (("sched", "sched_process_exec"),),
        "process_exec",
        "process starts, per (cgroup, comm), aggregated",
    ),
    Program(
        "exit",
        "PROG_EXIT",
        "process.c",
        (("sched", "sched_process_exit"),),
        "process_exit",
        "process exits with exit code and signal, per (cgroup, comm, status), aggregated",
    ),
    Program(
        "oom",
        "PROG_OOM",
        "oom.c",
        (("oom", "mark_victim"),),
        "oom_kill",
        "OOM kills, one event per victim (ring buffer)",
    ),
    Program(
        "tcp_connect",
        "PROG_TCP_CONNECT",
        "tcp.c",
        (("sock", "inet_sock_set_state"),),
        "tcp_connect, tcp_connect_failed, tcp_connect_latency",
        "connects with latency SYN_SENT->ESTABLISHED (aggregated) and failed connects; "
        "connects above the latency threshold one by one; also tracks socket owners for tcp_*",
    ),
    Program(
        "tcp_retransmit",
        "PROG_TCP_RETRANSMIT",
        "tcp.c",
        (("tcp", "tcp_retransmit_skb"),),
        "tcp_retransmit",
        "retransmitted segments per (cgroup, flow), aggregated",
    ),
    Program(
        "tcp_reset",
        "PROG_TCP_RESET",
        "tcp.c",
        (("tcp", "tcp_send_reset"), ("tcp", "tcp_receive_reset")),
        "tcp_reset",
        "resets sent and received per (cgroup, flow), aggregated",
    ),
)
BY_NAME: Mapping[str, Program] = {p.name: p for p in PROGRAMS}
COMMON_FILE = "common.c"
FILE_ORDER = ("process.c", "oom.c", "tcp.c")


@attrs.frozen
class KernelLimits:
    """Sizes and thresholds compiled into the programs."""

    latency_threshold_ns: int = 100_000_000
    ringbuf_pages: int = 256
    proc_entries: int = 16384
    flow_entries: int = 16384
    owner_entries: int = 65536
    filename_len: int = 64

    def defines(self) -> dict[str, int]:
        return {
            "LATENCY_THRESHOLD_NS": self.latency_threshold_ns,
            "RINGBUF_PAGES": self.ringbuf_pages,
            "PROC_ENTRIES": self.proc_entries,
            "FLOW_ENTRIES": self.flow_entries,
            "OWNER_ENTRIES": self.owner_entries,
            "FILENAME_LEN": self.filename_len,
        }


class UnknownProgramError(ValueError):
    """A program name that is not in the catalogue."""


def select(names: Iterable[str]) -> tuple[Program, ...]:
    """The programs named (catalogue order); raises UnknownProgramError naming the first unknown."""
    wanted = [n.strip() for n in names if n.strip()]
    for n in wanted:
        if n not in BY_NAME:
            raise UnknownProgramError(f"unknown program {n!r} (known: {', '.join(BY_NAME)})")
    return tuple(p for p in PROGRAMS if p.name in wanted)


def parse_format_fields(text: str) -> frozenset[str]:
    """Field names of a tracefs `format` file, without the common_* header fields."""
    fields = set()
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("field:"):
            continue
        decl = line[len("field:") :].split(";", 1)[0].strip()
        name = decl.split()[-1].split("[", 1)[0]
        if not name.startswith("common_"):
            fields.add(name)
    return frozenset(fields)


@attrs.frozen
class Assembly:
    text: str
    loaded: tuple[Program, ...]
    missing: tuple[tuple[Program, Tracepoint], ...]
    """Programs left out because a tracepoint of theirs does not exist on this kernel."""


def assemble(
    programs: Sequence[Program],
    sources: Mapping[str, str],
    formats: Mapping[Tracepoint, frozenset[str] | None],
    defines: Mapping[str, int],
) -> Assembly:
    """The BPF C text for `programs`: the #defines, `common.c`, then each needed file once.

    `formats` maps each tracepoint to its field names (None: absent on this kernel); programs
    with an absent tracepoint are left out and listed in `missing`. Every field present gets a
    `TP_<category>_<event>_<field>` define so the C can adapt to older tracepoint layouts.
    """
    loaded: list[Program] = []
    missing: list[tuple[Program, Tracepoint]] = []
    for p in programs:
        absent = [tp for tp in p.tracepoints if formats.get(tp) is None]
        if absent:
            missing.append((p, absent[0]))
        else:
            loaded.append(p)
    lines = [f"#define {k} {v}" for k, v in sorted(defines.items())]
    lines += [f"#define {p.define} 1" for p in loaded]
    for p in loaded:
        for cat, ev in p.tracepoints:
            lines += [f"#define TP_{cat}_{ev}_{f} 1" for f in sorted(formats[(cat, ev)] or ())]
    parts = ["\n".join(lines), sources[COMMON_FILE]]
    files = {p.file for p in loaded}
    parts += [sources[f] for f in FILE_ORDER if f in files]
    return Assembly("\n\n".join(parts) + "\n", tuple(loaded), tuple(missing))
