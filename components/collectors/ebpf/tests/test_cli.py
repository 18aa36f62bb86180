"""The command line: --help teaches programs, thresholds and flags; bad settings are one line."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

import pytest

from tapio_collector.cli import build_parser
from tapio_collector_ebpf.cli import SPEC, load, main
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
        "--latency-threshold SECONDS",
        "severity.latency_warning_seconds",
        "--dump-bpf",
        "tcp_retransmit warning >= 1/s",
        "NATS_URL",
    ):
        assert text in out


def _args(*argv: str) -> argparse.Namespace:
    return build_parser(SPEC).parse_args(list(argv))


def test_flags_win_over_the_yaml_section() -> None:
    section = {"interval_seconds": 5.0, "severity": {"retransmit_warning_per_s": 3}, "programs": ["oom"]}
    s = load(_args("--interval", "2", "--latency-warning", "0.05"), section)
    assert (s.interval_ns, s.programs) == (2_000_000_000, ("oom",))
    assert (s.severity.retransmit_warning_per_s, s.severity.latency_warning_ns) == (3, 50_000_000)


@pytest.mark.parametrize(
    ("argv", "section", "message"),
    [
        (("--programs", "exec,kprobe"), {}, "unknown program 'kprobe'"),
        (("--interval", "soon"), {}, "--interval"),
        ((), {"ringbuf_pages": 100}, "power of 2"),
        ((), {"no_such_key": 1}, "no_such_key"),
        ((), {"severity": {"latency_warning_seconds": -1}}, "latency_warning"),
    ],
)
def test_bad_settings_are_config_errors(
    argv: tuple[str, ...], section: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load(_args(*argv), section)


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


def test_without_capabilities_it_says_so_in_one_line() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("dropping privileges needs root and setpriv (util-linux)")
    # Still uid 0, but with no capabilities at all (as in a container that dropped them).
    nobody = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.run(
        [*nobody, sys.executable, "-m", "tapio_collector_ebpf", "--dump-bpf"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "needs root (or CAP_BPF and CAP_PERFMON)" in lines[0]
