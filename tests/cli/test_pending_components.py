"""Components without a runtime yet: real --help, clear refusal of bad configuration, honest exit."""

from __future__ import annotations

import pytest

from tapio_collector_systemd.cli import CLI as SYSTEMD
from tapio_common.cli import PendingComponent

CLIS = [SYSTEMD]


@pytest.mark.parametrize("cli", CLIS, ids=lambda c: c.prog)
def test_help_describes_the_component(cli: PendingComponent, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert cli.prog in out
    assert "NATS_URL" in out
    assert "--metrics-port" in out
    for flag in cli.flags:
        assert flag.name in out


@pytest.mark.parametrize("cli", CLIS, ids=lambda c: c.prog)
def test_bad_nats_url_is_one_clear_line(cli: PendingComponent, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--nats-url", "http://nowhere"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"{cli.prog}: error: bad NATS URL 'http://nowhere'")


@pytest.mark.parametrize("cli", CLIS, ids=lambda c: c.prog)
def test_unimplemented_runtime_says_so(cli: PendingComponent, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--nats-url", "nats://127.0.0.1:4222"]) == 1
    assert "not implemented yet" in capsys.readouterr().err
