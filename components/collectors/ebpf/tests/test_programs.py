"""Program selection and assembly of the BPF text for this kernel's tracepoints."""

from __future__ import annotations

import pytest

from tapio_collector_ebpf.adapters.bcc_session import read_sources
from tapio_collector_ebpf.programs import (
    PROGRAMS,
    KernelLimits,
    UnknownProgramError,
    assemble,
    parse_format_fields,
    select,
)

FORMAT = """name: sched_process_exit
ID: 300
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t pid;\toffset:24;\tsize:4;\tsigned:1;
\tfield:bool group_dead;\toffset:32;\tsize:1;\tsigned:0;
"""


def test_format_fields_without_the_common_header() -> None:
    assert parse_format_fields(FORMAT) == {"comm", "pid", "group_dead"}


def test_select_keeps_catalogue_order_and_names_the_unknown() -> None:
    assert [p.name for p in select(["oom", "exec"])] == ["exec", "oom"]
    with pytest.raises(UnknownProgramError, match="'kprobe_x'"):
        select(["exec", "kprobe_x"])


def test_a_missing_tracepoint_leaves_its_program_out() -> None:
    formats: dict[tuple[str, str], frozenset[str] | None] = {
        tp: frozenset({"pid"}) for p in PROGRAMS for tp in p.tracepoints
    }
    formats[("oom", "mark_victim")] = None
    asm = assemble(PROGRAMS, read_sources(), formats, KernelLimits().defines())
    assert [p.name for p, _ in asm.missing] == ["oom"]
    assert "oom" not in [p.name for p in asm.loaded]
    assert "TRACEPOINT_PROBE(oom, mark_victim)" not in asm.text
    assert "#define PROG_EXEC 1" in asm.text
    assert "#define TP_sched_sched_process_exec_pid 1" in asm.text
    assert "#define LATENCY_THRESHOLD_NS 100000000" in asm.text
    assert asm.text.count("struct proc_key {") == 1  # exec and exit share process.c, included once
