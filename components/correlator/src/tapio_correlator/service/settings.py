"""Settings of the NATS runner: the `correlator:` section of the config file (the engine's windows
under `correlator.engine`, the publisher's under `correlator.publisher`) and the flags of `serve`,
declared once here and built by `tapio_common.config.load_settings`."""

from __future__ import annotations

import attrs

from tapio_common.config.schema import above, at_least, group, one_of, port, setting
from tapio_correlator.engine.config import EngineConfig

PUBLISHER_SECTION = "publisher"
"""Sub-section of `correlator:` read by `PublisherSettings.from_section`, not by RunnerSettings."""
STATE_BUCKET = "CORRELATOR_STATE"
"""The state bucket is `<PREFIX>_CORRELATOR_STATE` (tapio_common.subjects), TAPIO_CORRELATOR_STATE by default."""


@attrs.frozen(kw_only=True)
class RunnerSettings:
    """How the runner consumes, how often it snapshots, what it provisions, and the engine's rules."""

    fetch_batch: int = setting(
        64, "messages per pull request (each may hold an EventBatch of many events)", check=at_least(1)
    )
    fetch_timeout: float = setting(
        1.0,
        "seconds a pull request waits for messages before the runner checks time-driven work",
        metavar="SECONDS",
        check=above(0),
    )
    idle_advance: float = setting(
        5.0,
        "wall seconds without events after which event time is advanced by the time that passed "
        "(so potential issues and closing windows are reported on a quiet stream)",
        metavar="SECONDS",
        check=above(0),
    )
    snapshot_interval: float = setting(
        30.0,
        "save the engine state to the KV bucket at least this often",
        metavar="SECONDS",
        check=above(0),
    )
    snapshot_events: int = setting(
        2_000_000, "save the engine state at least every this many events", check=at_least(1)
    )
    state_bucket: str = setting(
        "TAPIO_CORRELATOR_STATE",
        "JetStream KV bucket of the engine state",
        metavar="BUCKET",
        default_text="<PREFIX>_CORRELATOR_STATE",
    )
    provision: bool = setting(
        False,
        "create/update the streams and durable consumers on start (always with the embedded server)",
    )
    replicas: int = setting(
        1, "stream replicas when provisioning: 1, or 3/5 in a cluster", check=one_of((1, 3, 5))
    )
    embedded_port: int = setting(
        4222,
        "port of the embedded JetStream started when no NATS URL is given (0 = any free port)",
        metavar="PORT",
        check=port,
    )
    engine: EngineConfig = group(
        EngineConfig, "engine settings (YAML section correlator.engine; the same for serve and replay)"
    )
