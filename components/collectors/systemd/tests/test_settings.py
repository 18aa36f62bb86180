"""Settings from flags, environment and the config file; --help teaches every flag; bad values are
one clear ConfigError naming the key."""

from __future__ import annotations

import argparse

import pytest

from tapio_collector.cli import build_parser
from tapio_collector_systemd.cli import SPEC, main
from tapio_collector_systemd.domain.filters import DEFAULT_INCLUDE
from tapio_collector_systemd.settings import ENV_BUS, load
from tapio_common.errors import ConfigError


def parse(*argv: str) -> argparse.Namespace:
    return build_parser(SPEC).parse_args(list(argv))


def test_defaults_follow_the_node_units() -> None:
    s = load(parse(), {}, env={})
    assert s.include == DEFAULT_INCLUDE
    assert s.exclude == ()
    assert s.bus_address == ""
    assert s.filter("kubelet.service")
    assert s.filter("containerd.service")
    assert not s.filter("cron.service")
    assert s.journal_lines == 10


def test_flags_win_over_environment_over_file() -> None:
    section = {
        "include": ["a*.service"],
        "bus_address": "unix:path=/file",
        "journal_lines": 3,
        "publisher": {},
    }
    s = load(parse(), section, env={ENV_BUS: "unix:path=/env"})
    assert (s.include, s.bus_address, s.journal_lines) == (("a*.service",), "unix:path=/env", 3)
    s = load(parse("--unit", "x.service,y*", "--bus", "unix:path=/flag", "--exclude-unit", "y1"), section,
             env={ENV_BUS: "unix:path=/env"})  # fmt: skip
    assert (s.include, s.exclude, s.bus_address) == (("x.service", "y*"), ("y1",), "unix:path=/flag")
    assert s.filter("y2")
    assert not s.filter("y1")


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"inclde": ["x"]}, "unknown setting"),
        ({"journal_lines": "many"}, "journal_lines"),
        ({"journal_lines": -1}, "journal_lines"),
        ({"include": [""]}, "bad unit pattern"),
        ({"include": []}, "names no unit glob"),
        ({"reconnect_min": 5, "reconnect_max": 1}, "must be <= reconnect_max"),
    ],
)
def test_bad_settings_name_the_key(section: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load(parse(), section, env={})


def test_help_documents_flags_defaults_and_environment() -> None:
    text = build_parser(SPEC).format_help()
    for needle in ("--unit GLOBS", "--exclude-unit GLOBS", "--bus ADDRESS", "--journal-lines N", "--journal-root DIR",
                   ENV_BUS, "kubelet.service", "tapio.events.systemd.{service}.{state}", "NATS_URL"):  # fmt: skip
        assert needle in text, needle


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--nats-url", "http://nowhere"], "bad NATS URL 'http://nowhere'"),
        (["--nats-url", "nats://127.0.0.1:1", "--journal-lines=-1"], "journal_lines"),
        (["--nats-url", "nats://127.0.0.1:1", "--unit", " "], "names no unit glob"),
        (["--nats-url", "nats://127.0.0.1:1", "--unit", "a/b"], "bad unit pattern"),
    ],
)
def test_bad_configuration_is_one_clear_line(
    argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("tapio-collector-systemd: error: "), err
    assert problem in err[0], err
