"""The command line: --help teaches programs, thresholds and flags; bad settings are one line."""

from __future__ import annotations

import argparse
import os

import pytest

from tapio_collector_ebpf.cli import SPEC, load_settings, main
from tapio_collector_ebpf.programs import BY_NAME
from tapio_common.errors import ConfigError


def test_help_lists_programs_thresholds_and_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in BY_NAME:
        assert name in out
    for text in (
        "oom:mark_victim",
        "--latency-threshold-ms",
        "--dump-bpf",
        "tcp_retransmit warning >= 1/s",
        "NATS_URL",
    ):
        assert text in out


def _args(**flags: str) -> argparse.Namespace:
    ns = argparse.Namespace()
    for k, v in flags.items():
        setattr(ns, k, v)
    return ns


def test_flags_win_over_the_yaml_section() -> None:
    section = {"interval_s": 5.0, "severity": {"retransmit_warning_per_s": 3}, "programs": ["oom"]}
    s = load_settings(_args(interval="2", latency_warning_ms="50"), section)
    assert (s.interval_s, s.programs) == (2.0, ("oom",))
    assert (s.severity.retransmit_warning_per_s, s.severity.latency_warning_ns) == (3, 50_000_000)


@pytest.mark.parametrize(
    ("flags", "section", "message"),
    [
        ({"programs": "exec,kprobe"}, {}, "unknown program 'kprobe'"),
        ({"interval": "soon"}, {}, "--interval: bad value 'soon'"),
        ({}, {"ringbuf_pages": 100}, "power of 2"),
        ({}, {"no_such_key": 1}, "no_such_key"),
    ],
)
def test_bad_settings_are_config_errors(
    flags: dict[str, str], section: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(_args(**flags), section)


def test_bad_flag_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--programs", "nope", "--nats-url", "nats://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"{SPEC.prog}: error:")


def test_dump_bpf_prints_the_program_text(capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() != 0:
        pytest.skip("reading tracepoint formats from tracefs needs root")
    assert main(["--dump-bpf", "--programs", "oom,tcp_reset"]) == 0
    out = capsys.readouterr().out
    assert "TRACEPOINT_PROBE(oom, mark_victim)" in out
    assert "TRACEPOINT_PROBE(tcp, tcp_send_reset)" in out
    assert "#define PROG_EXEC" not in out
