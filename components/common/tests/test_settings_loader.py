"""The settings loader: precedence flags > env > file > defaults, errors naming key and file:line,
flags and --help generated from the class (so --help states the class's default)."""

from __future__ import annotations

import argparse
import enum
from pathlib import Path

import attrs
import pytest

from tapio_common.config import (
    Section,
    above,
    add_settings_arguments,
    at_least,
    describe_settings,
    group,
    load_settings,
    load_yaml,
    one_of,
    setting,
)
from tapio_common.errors import ConfigError


class Mode(enum.Enum):
    FAST = "fast"
    SAFE = "safe"


@attrs.frozen(kw_only=True)
class Inner:
    window_ns: int = setting(5_000_000_000, "a window", unit="ns", check=above(0))
    threshold: float = setting(0.25, "a threshold")


@attrs.frozen(kw_only=True)
class Demo:
    batch: int = setting(64, "messages per pull", env="DEMO_BATCH", check=at_least(1))
    timeout: float = setting(1.5, "seconds to wait", metavar="SECONDS")
    enabled: bool = setting(False, "turn it on")
    mode: Mode = setting(Mode.FAST, "how")
    replicas: int = setting(1, "copies", check=one_of((1, 3)))
    units: frozenset[str] = setting(frozenset({"a", "b"}), "names", converter=frozenset)
    label: str | None = setting(None, "optional label", flag="")
    inner: Inner = group(Inner, "inner settings")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="demo")
    add_settings_arguments(p, Demo, "demo options")
    return p


def load(argv: list[str], section: object = None, env: dict[str, str] | None = None) -> Demo:
    return load_settings(Demo, section, args=parser().parse_args(argv), env=env or {})  # type: ignore[arg-type]


def test_defaults_come_from_the_class() -> None:
    assert load([]) == Demo()
    assert Demo().inner.window_ns == 5_000_000_000


def test_flag_beats_env_beats_file_beats_default(tmp_path: Path) -> None:
    conf = tmp_path / "c.yaml"
    conf.write_text("demo:\n  batch: 10\n  timeout: 3\n  inner:\n    window_seconds: 2.5\n")
    section = load_yaml(str(conf)).child("demo")
    s = load([], section)
    assert (s.batch, s.timeout, s.inner.window_ns) == (10, 3.0, 2_500_000_000)
    assert load([], section, {"DEMO_BATCH": "20"}).batch == 20
    s = load(["--batch", "30", "--window", "0.5"], section, {"DEMO_BATCH": "20"})
    assert (s.batch, s.inner.window_ns) == (30, 500_000_000)


def test_types_from_text_and_yaml() -> None:
    s = load(["--enabled", "--mode", "SAFE", "--units", "x, y", "--replicas", "3"])
    assert (s.enabled, s.mode, s.units, s.replicas) == (True, Mode.SAFE, frozenset({"x", "y"}), 3)
    s = load([], {"enabled": True, "units": ["k"], "label": "l", "inner": {"window_ns": 7}})
    assert (s.enabled, s.units, s.label, s.inner.window_ns) == (True, frozenset({"k"}), "l", 7)
    assert load(["--no-enabled"], {"enabled": True}).enabled is False


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "demo:\n  batch: many\n",
            r"bad setting demo.batch \(.*c.yaml line 2\): expected a whole number, got 'many'",
        ),
        ("demo:\n\n  batch: 0\n", r"demo.batch \(.*c.yaml line 3\): batch must be >= 1, got 0"),
        ("demo:\n  enabled: maybe\n", r"demo.enabled .*expected true or false"),
        ("demo:\n  mode: slow\n", r"demo.mode .*expected one of fast\|safe, got 'slow'"),
        ("demo:\n  replicas: 2\n", r"replicas must be one of 1, 3, got 2"),
        ("demo:\n  batchs: 1\n", r"unknown setting demo.batchs \(.*c.yaml line 2\); known: batch, enabled"),
        (
            "demo:\n  inner:\n    window_seconds: 0\n",
            r"demo.inner.window_seconds \(.*line 3\): window_seconds must be > 0",
        ),
        (
            "demo:\n  inner:\n    window_seconds: 1\n    window_ns: 1\n",
            r"set window_seconds or window_ns, not both",
        ),
        ("demo:\n  inner: 3\n", r"demo.inner \(.*line 2\) must be a mapping"),
        ("demo:\n  batch: 1.5\n", r"expected a whole number, got 1.5"),
    ],
)
def test_file_errors_name_key_file_and_line(tmp_path: Path, yaml_text: str, message: str) -> None:
    conf = tmp_path / "c.yaml"
    conf.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load([], load_yaml(str(conf)).child("demo"))


def test_flag_and_env_errors_name_the_flag_and_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"bad setting --batch: expected a whole number, got 'x'"):
        load(["--batch", "x"])
    with pytest.raises(ConfigError, match=r"bad setting environment variable DEMO_BATCH: batch must be >= 1"):
        load([], env={"DEMO_BATCH": "0"})


def test_plain_mapping_is_named_and_required_fields_are_reported() -> None:
    @attrs.frozen
    class Needs:
        path: str = setting(help="where")

    with pytest.raises(ConfigError, match=r"missing setting thing.path: where"):
        load_settings(Needs, {}, name="thing")
    assert load_settings(Needs, {}, defaults={"path": "/x"}).path == "/x"
    assert load_settings(Needs, {"path": "/y"}, defaults={"path": "/x"}).path == "/y"
    assert load_settings(Needs, {"path": "/y"}, overrides={"path": "/z"}).path == "/z"


def test_allowed_subsections_are_left_for_other_code() -> None:
    assert load_settings(Inner, Section({"publisher": {"x": 1}}), allow=("publisher",)) == Inner()


def test_help_states_every_default_and_env() -> None:
    text = " ".join(parser().format_help().split())
    for needle in (
        "--batch N messages per pull (default 64; env DEMO_BATCH)",
        "--timeout SECONDS seconds to wait (default 1.5)",
        "--enabled, --no-enabled turn it on (default false)",
        "--mode {fast,safe} how (default fast)",
        "--units A,B names (default a,b)",
        "inner settings:",
        "--window SECONDS a window (default 5 s)",
    ):
        assert needle in text, needle
    assert "--label" not in text  # flag="" : file and environment only


def test_listing_names_the_yaml_keys() -> None:
    listing = describe_settings(Demo, "demo")
    assert "`demo:`" in listing
    for key in ("batch", "inner.window_seconds", "inner.threshold", "label"):
        assert f"  {key} " in listing


def test_a_missing_help_text_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="help"):
        setting(1)
