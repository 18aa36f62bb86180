"""Settings of the consumer runtime (one frozen attrs class, defaults in one place): the `consumer:`
section of a component's config, read by the component's settings loader."""

from __future__ import annotations

from typing import Any

import attrs

from tapio_common.errors import ConfigError


def _field(default: Any, help_text: str, *, minimum: float | None = None, above: float | None = None) -> Any:
    def check(_inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
        if minimum is not None and value < minimum:
            raise ConfigError(f"consumer {attr.name} must be >= {minimum}, got {value}")
        if above is not None and value <= above:
            raise ConfigError(f"consumer {attr.name} must be > {above}, got {value}")

    return attrs.field(default=default, validator=check, metadata={"help": help_text})


@attrs.frozen(kw_only=True)
class ConsumerSettings:
    """How a component pulls, retries, deduplicates and reports its durable consumer."""

    batch: int = _field(64, "messages asked for by one pull request (each may hold an EventBatch)", minimum=1)
    pulls_ahead: int = _field(
        2, "pull requests kept open at once: the next messages travel while the handler works", minimum=1
    )
    expires: float = _field(
        1.0,
        "seconds a pull request waits on a quiet stream (the handler's idle hook runs that often)",
        above=0,
    )
    backoff_first: float = _field(1.0, "seconds before the first redelivery of a failed message", minimum=0)
    backoff_most: float = _field(
        60.0, "longest redelivery delay in seconds (doubling from backoff_first)", minimum=0
    )
    dedup_window: int = _field(
        100_000,
        "item keys (event ids ...) remembered so a re-published batch reaches the handler once "
        "(0 = off; about 100 bytes of memory per key)",
        minimum=0,
    )
    create: bool = attrs.field(
        default=True,
        metadata={"help": "create the durable consumer when it is missing (where the NATS user may)"},
    )
    bind_wait: float = _field(
        60.0, "seconds to keep trying to bind the durable consumer at start before giving up", minimum=0
    )
    info_interval: float = _field(
        5.0, "seconds between consumer-info reads (the pending / ack-pending / redelivered gauges)", above=0
    )
    loop_lag_threshold: float = _field(
        10.0, "/healthz fails when the event loop has not run for this many seconds", above=0
    )
    drain_timeout: float = _field(
        30.0, "seconds a stop waits for messages already pulled to be handled", minimum=0
    )
