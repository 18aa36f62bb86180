"""Configuration: precedence of flags, environment and YAML, and one clear error per bad setting."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tapio_common.config import DEFAULT_METRICS_PORT, add_common_arguments, load_common
from tapio_common.errors import ConfigError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_common_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_mean_embedded_jetstream() -> None:
    cfg = load_common(parse(), "correlator", env={})
    assert cfg.nats.urls == ()
    assert cfg.metrics_port == DEFAULT_METRICS_PORT == 7777
    assert cfg.log_level == "info"


def test_a_command_may_default_to_another_log_level(tmp_path: Path) -> None:
    assert load_common(parse(), "admin", env={}, log_level_default="warning").log_level == "warning"
    env = {"TAPIO_LOG_LEVEL": "debug"}
    assert load_common(parse(), "admin", env=env, log_level_default="warning").log_level == "debug"
    conf = tmp_path / "a.yaml"
    conf.write_text("log:\n  level: error\n")
    assert (
        load_common(parse("--config", str(conf)), "admin", env={}, log_level_default="warning").log_level
        == "error"
    )


def test_flag_beats_env_beats_yaml(tmp_path: Path) -> None:
    conf = tmp_path / "tapio.yaml"
    conf.write_text("nats:\n  urls: [nats://yaml:4222]\nmetrics_port: 9001\nnode_name: from-yaml\n")
    env = {"NATS_URL": "nats://env-a:4222,nats://env-b:4222", "TAPIO_METRICS_PORT": "9002"}
    cfg = load_common(parse("--config", str(conf)), "correlator", env=env)
    assert cfg.nats.urls == ("nats://env-a:4222", "nats://env-b:4222")
    assert cfg.metrics_port == 9002
    assert cfg.node_name == "from-yaml"
    cfg = load_common(parse("--config", str(conf), "--nats-url", "tls://flag:4222"), "correlator", env=env)
    assert cfg.nats.urls == ("tls://flag:4222",)


def test_component_section_is_handed_over(tmp_path: Path) -> None:
    conf = tmp_path / "c.yaml"
    conf.write_text("correlator:\n  window_seconds: 300\n")
    cfg = load_common(parse("--config", str(conf)), "correlator", env={})
    assert cfg.section == {"window_seconds": 300}


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--nats-url", "http://x:4222"], {}, "bad NATS URL 'http://x:4222'"),
        (["--nats-url", "nats://:4222"], {}, "bad NATS URL"),
        (["--nats-url", "nats://host:99999"], {}, "bad NATS URL"),
        (
            ["--nats-creds", "/nonexistent/user.creds"],
            {},
            "NATS credentials file /nonexistent/user.creds does not exist",
        ),
        ([], {"NATS_TLS_CA": "/nope/ca.pem"}, "TLS CA bundle /nope/ca.pem does not exist"),
        ([], {"TAPIO_METRICS_PORT": "seventy"}, "bad metrics port 'seventy'"),
        ([], {"NATS_PASSWORD": "secret"}, "no NATS user"),
        ([], {"TAPIO_LOG_LEVEL": "loud"}, "bad log level 'loud'"),
    ],
)
def test_bad_settings_name_the_problem(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_common(parse(*argv), "correlator", env=env)


def test_cert_without_key_is_refused(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match="certificate and key go together"):
        load_common(parse("--tls-cert", str(cert)), "correlator", env={})


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "broken.yaml"
    conf.write_text("nats:\n  urls: [nats://a:4222\nmetrics_port: 1\n")
    with pytest.raises(ConfigError, match=r"malformed YAML in .*broken.yaml at line \d+"):
        load_common(parse("--config", str(conf)), "correlator", env={})


def test_a_config_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    conf = tmp_path / "latin1.yaml"
    conf.write_bytes("nats:\n  user: josé\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.yaml:2: not UTF-8 text \(byte 0xe9\)$"):
        load_common(parse("--config", str(conf)), "correlator", env={})


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_common(parse("--config", str(tmp_path / "none.yaml")), "correlator", env={})


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    conf = tmp_path / "c.yaml"
    conf.write_text("natz:\n  urls: []\n")
    with pytest.raises(ConfigError, match="unknown key 'natz'"):
        load_common(parse("--config", str(conf)), "correlator", env={})


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    conf = tmp_path / "c.yaml"
    conf.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_common(parse("--config", str(conf)), "correlator", env={})


def test_identity_names_the_inbox_without_sending_a_user(tmp_path: Path) -> None:
    """With a certificate mapped to its user (verify_and_map) a client sends no user, yet keeps `_INBOX.<user>`."""
    from tapio_common.nats.connect import inbox_prefix

    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("x")
    key.write_text("x")
    env = {"NATS_IDENTITY": "tapio-collectors", "NATS_TLS_CERT": str(cert), "NATS_TLS_KEY": str(key)}
    cfg = load_common(parse(), "correlator", env=env)
    assert (cfg.nats.identity, cfg.nats.user, cfg.nats.password) == ("tapio-collectors", None, None)
    assert inbox_prefix(cfg.nats) == "_INBOX.tapio-collectors"
    cfg = load_common(parse("--nats-identity", "tapio-pipeline"), "correlator", env=env)
    assert inbox_prefix(cfg.nats) == "_INBOX.tapio-pipeline"
    conf = tmp_path / "t.yaml"
    conf.write_text("nats:\n  identity: tapio-correlation\n")
    env.pop("NATS_IDENTITY")
    assert (
        load_common(parse("--config", str(conf)), "correlator", env=env).nats.identity == "tapio-correlation"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NATS_IDENTITY": "tapio-collectors"}, "set NATS_TLS_CERT and NATS_TLS_KEY"),
        ({"NATS_IDENTITY": "a.b"}, "bad NATS identity 'a.b'"),
        ({"NATS_IDENTITY": "tapio-collectors", "NATS_USER": "tapio-admin"}, "differ"),
    ],
)
def test_bad_identity_is_refused(tmp_path: Path, env: dict[str, str], message: str) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("x")
    key.write_text("x")
    if "a.b" in env.values() or "NATS_USER" in env:
        env = {**env, "NATS_TLS_CERT": str(cert), "NATS_TLS_KEY": str(key)}
    with pytest.raises(ConfigError, match=message):
        load_common(parse(), "correlator", env=env)
