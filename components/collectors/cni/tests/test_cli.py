"""The command line: --help teaches every flag and the thresholds; bad settings are one line."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tapio_collector.cli import build_parser
from tapio_collector_cni.cli import SPEC, main
from tapio_collector_cni.settings import CniSettings, from_sources
from tapio_common.errors import ConfigError


def test_help_lists_flags_defaults_and_thresholds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--interval", "--loss-ratio", "--drops", "--errors", "--min-count", "--interfaces",
                 "--exclude", "--netns", "--cni-conf-dir", "--proc", "--container-runtime", "--nats-url"):  # fmt: skip
        assert flag in text
    assert "(default 0.01)" in text
    assert "tapio.events.cni.{interface}.{ingress|egress}" in text
    assert "network_degradation" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--interval", "0"], "interval must be > 0"),
        (["--loss-ratio", "5"], "loss_ratio must be a fraction"),
        (["--drops", "many"], "bad setting --drops: expected a whole number, got 'many'"),
        (["--container-runtime", "rkt"], "container_runtime must be one of"),
    ],
)
def test_bad_settings_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--metrics-port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


def test_yaml_section_and_flags() -> None:
    args = build_parser(SPEC).parse_args(["--drops", "50"])
    s = from_sources(args, {"interval": 5, "interfaces": ["eth*", "cali*"], "loss_ratio": 0.02, "drops": 7})
    assert s == CniSettings(interval=5.0, drops=50, interfaces=("eth*", "cali*"), loss_ratio=0.02)
    assert from_sources(argparse.Namespace(), {"exclude": "lo,docker*"}).exclude == ("lo", "docker*")
    with pytest.raises(ConfigError, match=r"unknown setting cni-collector\.intervall"):
        from_sources(argparse.Namespace(), {"intervall": 5})


def test_yaml_file_errors_name_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "cni.yaml"
    conf.write_text("cni-collector:\n  interval: 5\n  loss_ratio: 2\n")
    assert main(["--config", str(conf), "--metrics-port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "loss_ratio must be a fraction" in err
    assert f"{conf}" in err


def test_netns_names_and_paths() -> None:
    assert CniSettings(netns="tcni-x").netns_path == "/run/netns/tcni-x"
    assert CniSettings(netns="/proc/1/ns/net").netns_path == "/proc/1/ns/net"
    assert CniSettings().netns_path == ""
