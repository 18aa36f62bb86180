"""The settings every component shares (NATS, TLS, metrics port, logs, data dir) from flags >
environment > the YAML file > defaults, validated; the component's own YAML section is handed on."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from tapio_common.config.loader import add_settings_arguments, load_settings
from tapio_common.config.schema import setting
from tapio_common.config.yamldoc import Section, load_yaml
from tapio_common.errors import ConfigError
from tapio_common.logging import FORMATS
from tapio_common.subjects import DEFAULT as DEFAULT_SUBJECTS
from tapio_common.subjects import DEFAULT_PREFIX, Subjects, check_prefix

DEFAULT_METRICS_PORT = 7777
LOG_LEVELS = ("debug", "info", "warning", "error")
NATS_SCHEMES = ("nats", "tls", "ws", "wss")
_TOP_KEYS = ("nats", "node_name", "metrics_port", "log", "data_dir")
_NATS_KEYS = ("urls", "creds", "nkey", "user", "password", "identity", "tls")

ENV_HELP = """\
environment (a flag wins over its variable, a variable over the --config file):
  NATS_URL            comma-separated NATS URLs; unset = start an embedded JetStream server
  NATS_CREDS          NATS .creds file (JWT + nkey)         NATS_NKEY   nkey seed file
  NATS_USER, NATS_PASSWORD                                  user/password authentication
  NATS_IDENTITY       the NATS user a client certificate maps to (server verify_and_map): names
                      the reply inbox _INBOX.<identity> without sending a user or password
  NATS_TLS_CERT, NATS_TLS_KEY, NATS_TLS_CA                  TLS client cert/key and CA to verify the server
  NATS_SUBJECT_PREFIX first token of every subject; streams and buckets are <PREFIX>_<KIND>
                      (default tapio: tapio.events.>, TAPIO_EVENTS; one per installation)
  NODE_NAME           this node's name (collectors; default: the host name)
  TAPIO_METRICS_PORT  port of /metrics, /healthz, /readyz (default 7777; 0 = any free port)
  TAPIO_LOG_LEVEL, TAPIO_LOG_FORMAT                         debug|info|warning|error, text|json
  TAPIO_DATA_DIR      state directory (spool, embedded JetStream store)
  TAPIO_CONFIG        YAML config file (same keys as the flags, see README)"""


def _hostname() -> str:
    return os.uname().nodename


@attrs.frozen
class TlsConfig:
    cert: str | None = None
    key: str | None = None
    ca: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.cert or self.ca)


@attrs.frozen
class NatsConfig:
    """How to reach NATS. No URLs means: run an embedded JetStream server."""

    urls: tuple[str, ...] = ()
    creds: str | None = None
    nkey: str | None = None
    user: str | None = None
    password: str | None = None
    # The NATS user this client is when the server maps its TLS certificate to a user
    # (verify_and_map) and no user is sent: it only names the reply inbox (_INBOX.<identity>).
    identity: str | None = None
    tls: TlsConfig = TlsConfig()
    connect_timeout: float = 5.0
    reconnect_wait: float = 2.0
    max_reconnects: int = -1  # -1: keep trying forever once connected


def _prefix(_inst: object, _attr: object, value: str) -> None:
    check_prefix(value)


@attrs.frozen(kw_only=True)
class SubjectSettings:
    """The installation's subject prefix (YAML `nats.subject_prefix`), see tapio_common.subjects."""

    subject_prefix: str = setting(
        DEFAULT_PREFIX,
        "first token of every NATS subject; streams and KV buckets are named <PREFIX>_<KIND> "
        "(tapio: tapio.events.>, TAPIO_EVENTS); give each installation sharing a NATS account its own",
        env="NATS_SUBJECT_PREFIX",
        metavar="TOKEN",
        check=_prefix,
    )


@attrs.frozen
class CommonConfig:
    nats: NatsConfig = NatsConfig()
    # Every subject, stream and bucket name of this installation (NATS_SUBJECT_PREFIX).
    subjects: Subjects = DEFAULT_SUBJECTS
    node_name: str = attrs.field(factory=_hostname)
    metrics_port: int = DEFAULT_METRICS_PORT
    log_level: str = "info"
    log_format: str = "text"
    data_dir: str = attrs.field(factory=lambda: str(default_data_dir()))
    # The component's own section of the YAML file (e.g. `correlator:`), a Section that knows its
    # file and the line of each key; give it to `load_settings` with the component's settings class.
    section: Section = attrs.field(factory=Section)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tapio"


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the flags every component shares (NATS, TLS, metrics, logging, config file)."""
    g = parser.add_argument_group("common options")
    g.add_argument("--config", metavar="FILE", help="YAML configuration file (env TAPIO_CONFIG)")
    g.add_argument(
        "--nats-url",
        metavar="URL[,URL]",
        help="NATS server URL(s), e.g. nats://nats:4222 (env NATS_URL); unset = embedded JetStream",
    )
    g.add_argument("--nats-creds", metavar="FILE", help="NATS credentials file (env NATS_CREDS)")
    g.add_argument("--nats-nkey", metavar="FILE", help="nkey seed file (env NATS_NKEY)")
    g.add_argument("--nats-user", metavar="USER", help="user for user/password auth (env NATS_USER)")
    g.add_argument(
        "--nats-identity",
        metavar="USER",
        help="NATS user the TLS client certificate maps to (server verify_and_map); names the reply "
        "inbox _INBOX.<USER>, sends no user or password (env NATS_IDENTITY)",
    )
    g.add_argument("--tls-cert", metavar="FILE", help="TLS client certificate (env NATS_TLS_CERT)")
    g.add_argument("--tls-key", metavar="FILE", help="TLS client key (env NATS_TLS_KEY)")
    g.add_argument("--tls-ca", metavar="FILE", help="CA bundle verifying the server (env NATS_TLS_CA)")
    add_settings_arguments(g, SubjectSettings)  # type: ignore[arg-type]
    g.add_argument("--node-name", metavar="NAME", help="this node's name (env NODE_NAME)")
    g.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help=f"port for /metrics, /healthz, /readyz (env TAPIO_METRICS_PORT, default {DEFAULT_METRICS_PORT})",
    )
    g.add_argument("--log-level", choices=LOG_LEVELS, help="log level (env TAPIO_LOG_LEVEL, default info)")
    g.add_argument("--log-format", choices=FORMATS, help="log format (env TAPIO_LOG_FORMAT, default text)")
    g.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"state directory (env TAPIO_DATA_DIR, default {default_data_dir()})",
    )


def load_common(
    args: argparse.Namespace,
    component: str,
    env: Mapping[str, str] | None = None,
    *,
    log_level_default: str = "info",
) -> CommonConfig:
    """Merges flags, environment and the YAML file into a validated CommonConfig.

    `log_level_default`: the level when neither --log-level, TAPIO_LOG_LEVEL nor the YAML `log.level`
    sets one (e.g. "warning" for a command whose console output is the point)."""
    env = os.environ if env is None else env
    path = getattr(args, "config", None) or env.get("TAPIO_CONFIG")
    doc = load_yaml(path) if path else Section(name="")
    where = path or "config"
    unknown = sorted(set(doc) - set(_TOP_KEYS) - {component})
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} at {doc.where(unknown[0])} (known: {', '.join((*_TOP_KEYS, component))})"
        )
    ydoc_nats = _mapping(doc.get("nats", {}), f"{where}: nats")
    ydoc_tls = _mapping(ydoc_nats.get("tls", {}), f"{where}: nats.tls")
    ydoc_log = _mapping(doc.get("log", {}), f"{where}: log")

    def pick(flag: str | None, var: str | None, yaml_value: Any) -> Any:
        value = getattr(args, flag, None) if flag else None
        if value is None and var:
            value = env.get(var) or None
        return yaml_value if value is None else value

    urls_raw = pick("nats_url", "NATS_URL", ydoc_nats.get("urls"))
    urls = _split_urls(urls_raw)
    tls = TlsConfig(
        cert=pick("tls_cert", "NATS_TLS_CERT", ydoc_tls.get("cert")),
        key=pick("tls_key", "NATS_TLS_KEY", ydoc_tls.get("key")),
        ca=pick("tls_ca", "NATS_TLS_CA", ydoc_tls.get("ca")),
    )
    nats_cfg = NatsConfig(
        urls=urls,
        creds=pick("nats_creds", "NATS_CREDS", ydoc_nats.get("creds")),
        nkey=pick("nats_nkey", "NATS_NKEY", ydoc_nats.get("nkey")),
        user=pick("nats_user", "NATS_USER", ydoc_nats.get("user")),
        password=pick(None, "NATS_PASSWORD", ydoc_nats.get("password")),
        identity=pick("nats_identity", "NATS_IDENTITY", ydoc_nats.get("identity")),
        tls=tls,
    )
    prefix = load_settings(
        SubjectSettings, doc.child("nats"), args=args, env=env, allow=_NATS_KEYS
    ).subject_prefix
    port_raw = pick("metrics_port", "TAPIO_METRICS_PORT", doc.get("metrics_port"))
    cfg = CommonConfig(
        nats=nats_cfg,
        subjects=Subjects(prefix),
        node_name=str(pick("node_name", "NODE_NAME", doc.get("node_name")) or _hostname()),
        metrics_port=_port(port_raw, where) if port_raw is not None else DEFAULT_METRICS_PORT,
        log_level=str(
            pick("log_level", "TAPIO_LOG_LEVEL", ydoc_log.get("level")) or log_level_default
        ).lower(),
        log_format=str(pick("log_format", "TAPIO_LOG_FORMAT", ydoc_log.get("format")) or "text").lower(),
        data_dir=str(pick("data_dir", "TAPIO_DATA_DIR", doc.get("data_dir")) or default_data_dir()),
        section=doc.child(component),
    )
    validate(cfg)
    return cfg


def validate(cfg: CommonConfig) -> None:
    """Raises ConfigError for the first problem found, naming the setting."""
    for url in cfg.nats.urls:
        parts = urlsplit(url)
        if parts.scheme not in NATS_SCHEMES or not parts.hostname:
            raise ConfigError(
                f"bad NATS URL {url!r}: expected {'|'.join(NATS_SCHEMES)}://host[:port], e.g. nats://nats:4222"
            )
        try:
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as e:
            raise ConfigError(f"bad NATS URL {url!r}: {e}") from e
    for name, value in (
        ("NATS credentials file", cfg.nats.creds),
        ("nkey seed file", cfg.nats.nkey),
        ("TLS certificate", cfg.nats.tls.cert),
        ("TLS key", cfg.nats.tls.key),
        ("TLS CA bundle", cfg.nats.tls.ca),
    ):
        if value is not None:
            _readable_file(name, value)
    if bool(cfg.nats.tls.cert) != bool(cfg.nats.tls.key):
        raise ConfigError(
            "TLS client certificate and key go together: set both NATS_TLS_CERT and NATS_TLS_KEY"
        )
    if cfg.nats.creds and (cfg.nats.nkey or cfg.nats.user):
        raise ConfigError("choose one NATS authentication: credentials file, nkey seed or user/password")
    if cfg.nats.password and not cfg.nats.user:
        raise ConfigError("NATS_PASSWORD is set but no NATS user: set NATS_USER or --nats-user")
    if cfg.nats.identity is not None:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", cfg.nats.identity):
            raise ConfigError(
                f"bad NATS identity {cfg.nats.identity!r}: a NATS user name (letters, digits, '-', '_')"
            )
        if not cfg.nats.tls.cert:
            raise ConfigError(
                "NATS_IDENTITY names the user of a TLS client certificate: set NATS_TLS_CERT and NATS_TLS_KEY"
            )
        if cfg.nats.user and cfg.nats.user != cfg.nats.identity:
            raise ConfigError(
                f"NATS_USER {cfg.nats.user!r} and NATS_IDENTITY {cfg.nats.identity!r} differ: set one of them"
            )
    if cfg.log_level not in LOG_LEVELS:
        raise ConfigError(f"bad log level {cfg.log_level!r}: choose one of {', '.join(LOG_LEVELS)}")
    if cfg.log_format not in FORMATS:
        raise ConfigError(f"bad log format {cfg.log_format!r}: choose one of {', '.join(FORMATS)}")


def _split_urls(raw: Any) -> tuple[str, ...]:
    if raw is None or raw == "":
        return ()
    items = raw if isinstance(raw, list) else str(raw).split(",")
    return tuple(str(u).strip() for u in items if str(u).strip())


def _port(raw: Any, where: str) -> int:
    try:
        port = int(raw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad metrics port {raw!r} ({where}): expected a number 0-65535") from e
    if not 0 <= port <= 65535:
        raise ConfigError(f"bad metrics port {port} ({where}): expected 0-65535")
    return port


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, not {type(value).__name__}")
    return value


def _readable_file(name: str, path: str) -> None:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{name} {path} does not exist")
    if not p.is_file():
        raise ConfigError(f"{name} {path} is not a file")
    if not os.access(p, os.R_OK):
        raise ConfigError(f"{name} {path} is not readable by this user")
