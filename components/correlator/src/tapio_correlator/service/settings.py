"""Settings of the NATS runner (the `correlator:` section of the config file, or flags)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from tapio_common.errors import ConfigError

_FIELDS = {
    "fetch_batch": int,
    "fetch_timeout": float,
    "idle_advance": float,
    "snapshot_interval": float,
    "snapshot_events": int,
    "state_bucket": str,
    "provision": bool,
    "replicas": int,
    "embedded_port": int,
    "reorder_slack": float,
}


@attrs.frozen
class RunnerSettings:
    """How the runner consumes, how often it snapshots, and what it provisions."""

    # Messages per pull request (each message may hold an EventBatch of many events).
    fetch_batch: int = 64
    # Seconds a pull request waits for messages before the runner checks time-driven work.
    fetch_timeout: float = 1.0
    # Wall seconds without events after which event time is advanced by the time that passed
    # (so potential_issue and closing windows are reported on a quiet stream).
    idle_advance: float = 5.0
    # Engine state goes to the JetStream KV bucket every this many seconds or events.
    snapshot_interval: float = 30.0
    snapshot_events: int = 2_000_000
    state_bucket: str = "TAPIO_CORRELATOR_STATE"
    # Create/update the streams and durable consumers on start (always with the embedded server).
    provision: bool = False
    replicas: int = 1
    # Port of the embedded JetStream (used when no NATS URL is given); 0 = any free port.
    embedded_port: int = 4222
    # Event time the engine waits for out-of-order events before acting: it adds to the latency
    # of every correlation (events later than this are still taken, as they come).
    reorder_slack: float = 0.5

    @classmethod
    def from_section(cls, section: Mapping[str, Any], **overrides: Any) -> RunnerSettings:
        """Builds settings from the `correlator:` config section; flags (overrides) win."""
        values: dict[str, Any] = {}
        for key, raw in section.items():
            if key == "publisher":  # the publisher's own settings (PublisherSettings.from_section)
                continue
            if key not in _FIELDS:
                raise ConfigError(
                    f"unknown key {key!r} in the correlator section (known: {', '.join(_FIELDS)})"
                )
            values[key] = _coerce(key, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.fetch_batch < 1:
            raise ConfigError(f"correlator fetch_batch must be >= 1, got {self.fetch_batch}")
        for name in ("fetch_timeout", "idle_advance", "snapshot_interval"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"correlator {name} must be > 0 seconds, got {getattr(self, name)}")
        if self.snapshot_events < 1:
            raise ConfigError(f"correlator snapshot_events must be >= 1, got {self.snapshot_events}")
        if self.replicas not in (1, 3, 5):
            raise ConfigError(f"replicas must be 1, 3 or 5, got {self.replicas}")
        if not 0 <= self.embedded_port <= 65535:
            raise ConfigError(f"embedded port must be 0-65535, got {self.embedded_port}")
        if self.reorder_slack < 0:
            raise ConfigError(f"reorder slack must be >= 0 seconds, got {self.reorder_slack}")


def _coerce(key: str, raw: Any) -> Any:
    kind = _FIELDS[key]
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        raise ConfigError(f"correlator {key} must be true or false, got {raw!r}")
    try:
        return kind(raw)
    except (TypeError, ValueError) as e:
        noun = {int: "whole number", float: "number"}.get(kind, "string")
        raise ConfigError(f"correlator {key} must be a {noun}, got {raw!r}") from e
