"""Settings of the exporter service (the `siem-exporter:` section of --config, or flags), validated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from tapio_common.errors import ConfigError
from tapio_exporters.domain.alerts import AlertTemplate, check_runbook_template
from tapio_exporters.domain.lifecycle import DEFAULT_WINDOW_NS, DEFAULT_WINDOWS_NS, LifecycleSettings

NS = 1_000_000_000
KEYS = ("sinks", "runbook_template", "labels", "resolve_after", "state_lookback", "fetch_batch", "fetch_timeout",
        "idle_advance", "provision", "replicas", "retry_max", "publisher")  # fmt: skip


@attrs.frozen
class ExporterSettings:
    sinks: tuple[Mapping[str, Any], ...] = ()
    lifecycle: LifecycleSettings = LifecycleSettings()  # noqa: RUF009 - frozen, safe to share
    state_lookback: float = 24 * 3600.0  # seconds of alerts read back on start
    fetch_batch: int = 500
    fetch_timeout: float = 1.0
    idle_advance: float = 2.0  # quiet input for this long: event time follows the wall clock
    retry_max: float = 30.0  # longest pause between delivery attempts of a failing sink
    provision: bool = False
    replicas: int = 1
    publisher: Mapping[str, Any] = attrs.field(factory=dict)  # the publisher's own settings

    @classmethod
    def from_section(
        cls, section: Mapping[str, Any], where: str, overrides: Mapping[str, Any]
    ) -> ExporterSettings:
        """From the YAML section; `overrides` (flags) win. Errors name the key and the file."""
        doc = {**section, **{k: v for k, v in overrides.items() if v is not None}}
        unknown = sorted(set(doc) - set(KEYS))
        if unknown:
            raise ConfigError(
                f"unknown key {unknown[0]!r} in {where}: siem-exporter (known: {', '.join(KEYS)})"
            )
        sinks = doc.get("sinks") or []
        if not isinstance(sinks, list) or not all(isinstance(s, Mapping) for s in sinks):
            raise ConfigError(f"{where}: siem-exporter.sinks must be a list of mappings (one per sink)")
        template = str(doc.get("runbook_template") or "")
        try:
            check_runbook_template(template)
        except ValueError as e:
            raise ConfigError(f"{where}: siem-exporter.runbook_template: {e}") from e
        labels = doc.get("labels") or {}
        if not isinstance(labels, Mapping):
            raise ConfigError(f"{where}: siem-exporter.labels must be a mapping of strings")
        windows, default = _windows(doc.get("resolve_after"), where)
        lookback = _number(doc, "state_lookback", 24 * 3600.0, where)
        lifecycle = LifecycleSettings(
            windows_ns=windows,
            default_window_ns=default,
            retain_ns=max(3600 * NS, 2 * max([default, *windows.values()])),
            template=AlertTemplate(template, {str(k): str(v) for k, v in labels.items()}),
        )
        if lookback * NS < lifecycle.max_window_ns:
            raise ConfigError(
                f"{where}: siem-exporter.state_lookback ({lookback:.0f}s) must be at least the longest "
                f"resolve_after window ({lifecycle.max_window_ns / NS:.0f}s)"
            )
        return cls(
            sinks=tuple(dict(s) for s in sinks),
            lifecycle=lifecycle,
            state_lookback=lookback,
            fetch_batch=int(_number(doc, "fetch_batch", 500, where, minimum=1)),
            fetch_timeout=_number(doc, "fetch_timeout", 1.0, where, minimum=0.05),
            idle_advance=_number(doc, "idle_advance", 2.0, where, minimum=0.1),
            retry_max=_number(doc, "retry_max", 30.0, where, minimum=0.1),
            provision=bool(doc.get("provision", False)),
            replicas=int(_number(doc, "replicas", 1, where, minimum=1)),
            publisher=dict(doc.get("publisher") or {}),
        )


def _number(doc: Mapping[str, Any], key: str, default: float, where: str, minimum: float = 0.0) -> float:
    raw = doc.get(key, default)
    try:
        value = float(raw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: siem-exporter.{key} must be a number, not {raw!r}") from e
    if value < minimum:
        raise ConfigError(f"{where}: siem-exporter.{key} must be at least {minimum}, not {value}")
    return value


def _windows(raw: Any, where: str) -> tuple[dict[str, int], int]:
    """`resolve_after`: seconds for every type (a number), or a mapping of type -> seconds with
    an optional `default`."""
    windows = dict(DEFAULT_WINDOWS_NS)
    default = DEFAULT_WINDOW_NS
    if raw is None:
        return windows, default
    if not isinstance(raw, Mapping):
        raw = {"default": raw}
        windows = {}
    for key, value in raw.items():
        try:
            ns = int(float(value) * NS)
        except (TypeError, ValueError) as e:
            raise ConfigError(
                f"{where}: siem-exporter.resolve_after.{key} must be seconds, not {value!r}"
            ) from e
        if ns <= 0:
            raise ConfigError(f"{where}: siem-exporter.resolve_after.{key} must be positive")
        if key == "default":
            default = ns
        else:
            windows[str(key)] = ns
    return windows, default
