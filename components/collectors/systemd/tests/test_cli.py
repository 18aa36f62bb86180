"""The command line of `tapio-collector-systemd` teaches its flags and refuses bad configuration clearly."""

from __future__ import annotations

import pytest

from tapio_collector_systemd.cli import build_parser, main


def test_help_describes_the_component(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "tapio-collector-systemd" in out
    assert "NATS_URL" in out
    assert "--metrics-port" in out


def test_bad_nats_url_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--nats-url", "http://nowhere"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "bad NATS URL 'http://nowhere'" in err[0]


def test_unimplemented_runtime_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--nats-url", "nats://127.0.0.1:4222"]) == 1
    assert "not implemented yet" in capsys.readouterr().err
