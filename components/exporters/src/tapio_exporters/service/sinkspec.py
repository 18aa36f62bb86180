"""Sink configuration: one mapping per sink (YAML `sinks:` list, or `--sink TYPE[:NAME]=URL?key=value&...`),
validated into a sink object; a misconfigured sink fails at start with one line naming it."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tapio_exporters.encoders.cef import CefOptions
from tapio_exporters.encoders.hec import HecOptions
from tapio_exporters.encoders.syslog import FACILITIES, SyslogOptions
from tapio_exporters.errors import SinkConfigError
from tapio_exporters.sinks.base import Sink, TlsOptions
from tapio_exporters.sinks.console import ConsoleSink
from tapio_exporters.sinks.elastic import ElasticSettings, ElasticSink
from tapio_exporters.sinks.hec import HecSettings, HecSink
from tapio_exporters.sinks.http_json import (
    AlertmanagerSettings,
    AlertmanagerSink,
    WebhookSettings,
    WebhookSink,
)
from tapio_exporters.sinks.syslog import SyslogSettings, SyslogSink

TYPES = ("hec", "elastic", "syslog", "cef", "alertmanager", "webhook", "console")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_COMMON = {"name", "type", "url", "batch", "tls", "tls_ca", "tls_cert", "tls_key", "tls_insecure",
           "tls_server_name", "timeout"}  # fmt: skip
_KEYS: dict[str, set[str]] = {
    "hec": {"token", "token_env", "token_file", "ack", "gzip", "channel", "index", "source", "sourcetype",
            "host", "ack_timeout", "max_batch_bytes"},
    "elastic": {"index", "username", "password", "api_key", "password_env", "password_file", "api_key_env", "api_key_file"},
    "syslog": {"facility", "app_name", "hostname", "pen"},
    "cef": {"facility", "app_name", "hostname", "pen", "vendor", "product", "version"},
    "alertmanager": {"generator_url"},
    "webhook": {"secret_env", "secret_file"},
    "console": {"json"},
}  # fmt: skip

SINK_HELP = """\
sinks (repeat --sink, or list them under `siem-exporter: sinks:` in --config; every key below works
in both, as YAML keys or as URL query parameters of --sink):
  --sink hec=https://splunk:8088?token_env=HEC_TOKEN&ack=true      Splunk HTTP Event Collector
      token | token_env | token_file (required), ack (indexer acknowledgement; default false),
      gzip (default true), channel (GUID; default a new one), index, source (tapio), sourcetype (_json),
      host, ack_timeout (s, 60), max_batch_bytes (1000000)
  --sink elastic=https://es:9200?index=tapio-alerts&api_key_env=ES_API_KEY   Elasticsearch _bulk, ECS
      index (tapio-alerts), username + password_env | password_file, or api_key_env | api_key_file
  --sink syslog=tcp://siem:514   |  tls://siem:6514  |  udp://siem:514       RFC 5424
  --sink cef=tls://arcsight:6514?vendor=Tapio                                  CEF inside RFC 5424
      facility (local0), app_name (tapio), hostname (this host), pen (32473), CEF: vendor, product, version
  --sink alertmanager=http://alertmanager:9093     Prometheus Alertmanager /api/v2/alerts; generator_url
  --sink webhook=https://hooks.example/tapio?secret_env=WEBHOOK_SECRET   JSON, HMAC-SHA256 signed
  --sink console   (or console?json=true)          print each alert as it fires, updates, resolves
  every sink: name (default: its type), batch (alerts a delivery, default 500), timeout (s, 10),
  tls_ca, tls_cert, tls_key, tls_insecure, tls_server_name (YAML: a `tls:` mapping of ca/cert/key/...)"""


def parse_flag(text: str) -> dict[str, Any]:
    """`TYPE[:NAME][=URL[?k=v&...]]` -> the mapping a YAML sink entry would be."""
    head, _, url = text.partition("=")
    kind, _, name = head.partition(":")
    spec: dict[str, Any] = {"type": kind.strip().lower()}
    if name:
        spec["name"] = name.strip()
    if url:
        parts = urlsplit(url)
        spec.update(dict(parse_qsl(parts.query, keep_blank_values=True)))
        spec["url"] = parts._replace(query="").geturl()
    elif "?" in kind:
        kind, _, query = kind.partition("?")
        spec["type"] = kind
        spec.update(dict(parse_qsl(query)))
    return spec


class _Spec:
    """Typed reads from one sink mapping, each error naming the sink and the key."""

    def __init__(self, raw: Mapping[str, Any], where: str) -> None:
        self.raw = dict(raw)
        kind = str(self.raw.get("type", "")).lower()
        if kind not in TYPES:
            raise SinkConfigError(f"{where}: unknown sink type {kind!r} (choose one of {', '.join(TYPES)})")
        self.kind = kind
        self.name = str(self.raw.get("name") or kind)
        if not _NAME.match(self.name):
            raise SinkConfigError(f"{where}: sink name {self.name!r} must be 1-32 of [a-z0-9_-]")
        self.where = f"sink {self.name}"
        tls = self.raw.pop("tls", None)
        if isinstance(tls, Mapping):
            self.raw.update({f"tls_{k}": v for k, v in tls.items()})
        unknown = sorted(set(self.raw) - _COMMON - _KEYS[kind])
        if unknown:
            raise SinkConfigError(
                f"{self.where}: unknown option {unknown[0]!r} for a {kind} sink "
                f"(known: {', '.join(sorted((_COMMON - {'tls'}) | _KEYS[kind]))})"
            )

    def text(self, key: str, default: str = "") -> str:
        value = self.raw.get(key, default)
        return default if value is None else str(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise SinkConfigError(f"{self.where}: {key} must be true or false, not {value!r}")

    def number(self, key: str, default: float, minimum: float = 0.0) -> float:
        try:
            value = float(self.raw.get(key, default))
        except (TypeError, ValueError) as e:
            raise SinkConfigError(f"{self.where}: {key} must be a number, not {self.raw.get(key)!r}") from e
        if value < minimum:
            raise SinkConfigError(f"{self.where}: {key} must be at least {minimum}, not {value}")
        return value

    def url(self, schemes: tuple[str, ...]) -> tuple[str, str, int | None]:
        url = self.text("url")
        if not url:
            raise SinkConfigError(f"{self.where}: url is required, e.g. {schemes[0]}://host:port")
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError as e:
            raise SinkConfigError(f"{self.where}: bad url {url!r}: {e}") from e
        if parts.scheme not in schemes or not parts.hostname:
            raise SinkConfigError(
                f"{self.where}: bad url {url!r}: expected {'|'.join(schemes)}://host[:port]"
            )
        return parts.scheme, parts.hostname, port

    def secret(self, key: str, required: bool) -> str:
        """`key`, `key_env` (a variable's name) or `key_file` (a file's path)."""
        if self.raw.get(key):
            return self.text(key)
        env = self.text(f"{key}_env")
        if env:
            value = os.environ.get(env, "")
            if not value:
                raise SinkConfigError(f"{self.where}: {key}_env names {env}, which is not set")
            return value
        path = self.text(f"{key}_file")
        if path:
            try:
                return Path(path).read_text(encoding="utf-8").strip()
            except OSError as e:
                raise SinkConfigError(f"{self.where}: cannot read {key}_file {path}: {e.strerror}") from e
        if required:
            raise SinkConfigError(f"{self.where}: {key} is missing: set {key}, {key}_env or {key}_file")
        return ""

    def tls(self) -> TlsOptions:
        opts = TlsOptions(
            ca=self.text("tls_ca"),
            cert=self.text("tls_cert"),
            key=self.text("tls_key"),
            insecure=self.flag("tls_insecure", False),
            server_name=self.text("tls_server_name"),
        )
        opts.context(self.name)  # unreadable CA or key: fail now, with the file named
        return opts


def build_sink(raw: Mapping[str, Any], where: str = "config") -> tuple[Sink, int]:
    """The sink of one mapping and its batch size; SinkConfigError for the first problem."""
    s = _Spec(raw, where)
    batch = int(s.number("batch", 500, 1))
    timeout = s.number("timeout", 10.0, 0.1)
    if s.kind == "console":
        return ConsoleSink(s.name, as_json=s.flag("json", False)), batch
    if s.kind in ("syslog", "cef"):
        scheme, host, port = s.url(("tcp", "tls", "udp"))
        facility_name = s.text("facility", "local0")
        if facility_name not in FACILITIES:
            raise SinkConfigError(
                f"{s.where}: unknown facility {facility_name!r} (e.g. local0..local7, daemon)"
            )
        options = SyslogOptions(
            hostname=s.text("hostname") or socket.gethostname(),
            app_name=s.text("app_name", "tapio"),
            facility=FACILITIES[facility_name],
            pen=int(s.number("pen", 32473, 1)),
        )
        cef = CefOptions(
            vendor=s.text("vendor", "Tapio"),
            product=s.text("product", "Tapio"),
            version=s.text("version", "0.1"),
        )
        settings = SyslogSettings(
            host, port or (6514 if scheme == "tls" else 514), scheme, "cef" if s.kind == "cef" else "rfc5424",
            timeout, options, cef, s.tls() if scheme == "tls" else TlsOptions(),
        )  # fmt: skip
        return SyslogSink(s.name, settings), batch
    scheme, _, _ = s.url(("http", "https"))
    tls = s.tls() if scheme == "https" else TlsOptions()
    url = s.text("url")
    if s.kind == "hec":
        hec = HecSettings(
            url=url,
            token=s.secret("token", required=True),
            channel=s.text("channel"),
            ack=s.flag("ack", False),
            gzip=s.flag("gzip", True),
            max_batch_bytes=int(s.number("max_batch_bytes", 1_000_000, 1000)),
            ack_timeout=s.number("ack_timeout", 60.0, 1.0),
            timeout=timeout,
            event=HecOptions(
                host=s.text("host"),
                source=s.text("source", "tapio"),
                sourcetype=s.text("sourcetype", "_json"),
                index=s.text("index"),
            ),
            tls=tls,
        )
        if hec.channel:
            _check_guid(s, hec.channel)
        return HecSink(s.name, hec), batch
    if s.kind == "elastic":
        password = s.secret("password", required=False)
        es = ElasticSettings(url, index=s.text("index", "tapio-alerts"), username=s.text("username"), password=password,
                             api_key=s.secret("api_key", required=False), timeout=timeout, tls=tls)  # fmt: skip
        return ElasticSink(s.name, es), batch
    if s.kind == "alertmanager":
        return AlertmanagerSink(
            s.name, AlertmanagerSettings(url, s.text("generator_url"), timeout, tls)
        ), batch
    secret = s.secret("secret", required=False).encode()
    return WebhookSink(s.name, WebhookSettings(url, secret, timeout, tls)), batch


def _check_guid(s: _Spec, channel: str) -> None:
    import uuid

    try:
        uuid.UUID(channel)
    except ValueError as e:
        raise SinkConfigError(f"{s.where}: channel must be a GUID, not {channel!r}") from e


def build_sinks(specs: list[Mapping[str, Any]], where: str) -> list[tuple[Sink, int]]:
    sinks = [build_sink(spec, f"{where}: sinks[{i}]") for i, spec in enumerate(specs)]
    names = [s.name for s, _ in sinks]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise SinkConfigError(f"{where}: two sinks are named {dup!r}: give each a distinct name")
    return sinks
