"""Subject prefix (NATS_SUBJECT_PREFIX): the names of one installation, the validation of the prefix,
and the setting read from flag > environment > YAML like every other."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tapio_common.config import add_common_arguments, load_common
from tapio_common.errors import ConfigError
from tapio_common.subjects import DEFAULT, KINDS, Subjects, check_prefix


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    return parser.parse_args(list(argv))


def test_default_installation_keeps_the_contract_names() -> None:
    assert DEFAULT.prefix == "tapio"
    assert DEFAULT.events == "tapio.events"
    assert DEFAULT.all("events") == "tapio.events.>"
    assert DEFAULT.correlations == "tapio.correlations"
    assert DEFAULT.alerts == "tapio.alerts"
    assert DEFAULT.processed == "tapio.processed"
    assert DEFAULT.dlq_subject("pipeline") == "tapio.dlq.pipeline"
    assert [DEFAULT.stream(k) for k in KINDS] == [
        "TAPIO_EVENTS", "TAPIO_CORRELATIONS", "TAPIO_ALERTS", "TAPIO_PROCESSED", "TAPIO_DLQ",
    ]  # fmt: skip
    assert DEFAULT.bucket("correlator_state") == "TAPIO_CORRELATOR_STATE"


def test_another_prefix_renames_every_subject_stream_and_bucket() -> None:
    blue = Subjects("blue")
    assert blue.all("correlations") == "blue.correlations.>"
    assert blue.events_stream == "BLUE_EVENTS"
    assert blue.dlq_stream == "BLUE_DLQ"
    assert blue.alerts_stream == "BLUE_ALERTS"
    assert blue.bucket("CORRELATOR_STATE") == "BLUE_CORRELATOR_STATE"
    # No name of one installation is a name of the other (nor matched by its wildcards).
    tapio_names = {DEFAULT.stream(k) for k in KINDS} | {DEFAULT.root(k) for k in KINDS}
    assert not tapio_names & ({blue.stream(k) for k in KINDS} | {blue.root(k) for k in KINDS})
    assert all(not blue.root(k).startswith("tapio.") for k in KINDS)


def test_prefixes_with_dash_and_underscore_give_distinct_streams() -> None:
    assert Subjects("a-b").events_stream == "A-B_EVENTS"
    assert Subjects("a_b").events_stream == "A_B_EVENTS"
    assert Subjects("team7").all("dlq") == "team7.dlq.>"


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown subject kind 'event'"):
        DEFAULT.root("event")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "it is empty"),
        ("tapio.blue", "holds a '.'"),
        ("blue*", "wildcard"),
        ("blue>", "wildcard"),
        ("blue green", "white space"),
        ("Blue", "upper-case"),
        ("x" * 33, "longer than 32"),
        ("-blue", "starting with a letter or digit"),
        ("blü", "only a-z"),
    ],
)
def test_a_bad_prefix_is_one_clear_error(value: str, why: str) -> None:
    with pytest.raises(ConfigError, match="bad subject prefix") as e:
        check_prefix(value)
    assert why in str(e.value)
    assert "NATS_SUBJECT_PREFIX" in str(e.value)
    with pytest.raises(ConfigError):
        Subjects(value)


def test_setting_default_env_flag_and_yaml(tmp_path: Path) -> None:
    assert load_common(parse(), "correlator", env={}).subjects == DEFAULT
    assert load_common(parse(), "correlator", env={"NATS_SUBJECT_PREFIX": "blue"}).subjects.prefix == "blue"
    conf = tmp_path / "t.yaml"
    conf.write_text("nats:\n  urls: [nats://n:4222]\n  subject_prefix: green\n")
    cfg = load_common(parse("--config", str(conf)), "correlator", env={})
    assert cfg.subjects.prefix == "green"
    assert cfg.nats.urls == ("nats://n:4222",)
    env = {"NATS_SUBJECT_PREFIX": "blue"}
    assert load_common(parse("--config", str(conf)), "correlator", env=env).subjects.prefix == "blue"
    flag = parse("--config", str(conf), "--subject-prefix", "red")
    assert load_common(flag, "correlator", env=env).subjects.prefix == "red"


def test_bad_prefix_in_the_environment_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"NATS_SUBJECT_PREFIX.*'tapio\.x'.*holds a '\.'"):
        load_common(parse(), "correlator", env={"NATS_SUBJECT_PREFIX": "tapio.x"})


def test_bad_prefix_in_the_file_names_the_key_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "t.yaml"
    conf.write_text("nats:\n  subject_prefix: 'a b'\n")
    with pytest.raises(ConfigError, match=r"subject_prefix .*t\.yaml line 2.*white space"):
        load_common(parse("--config", str(conf)), "correlator", env={})


def test_help_shows_the_flag_and_the_variable() -> None:
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    text = parser.format_help()
    assert "--subject-prefix TOKEN" in text
    assert "NATS_SUBJECT_PREFIX" in text
