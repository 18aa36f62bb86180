"""Settings of the consumer runtime (one frozen attrs class, defaults in one place): the `consumer:`
section of a component's config, built by `tapio_common.config.load_settings` like every setting."""

from __future__ import annotations

import attrs

from tapio_common.config.schema import above, at_least, setting


@attrs.frozen(kw_only=True)
class ConsumerSettings:
    """How a component pulls, retries, deduplicates and reports its durable consumer."""

    batch: int = setting(
        64, "messages asked for by one pull request (each may hold an EventBatch)", check=at_least(1), flag=""
    )
    pulls_ahead: int = setting(
        2,
        "pull requests kept open at once: the next messages travel while the handler works",
        check=at_least(1),
        flag="",
    )
    expires: float = setting(
        1.0,
        "seconds a pull request waits on a quiet stream (the handler's idle hook runs that often)",
        check=above(0),
        flag="",
    )
    linger: float = setting(
        0.0,
        "batch mode only: seconds to wait for more messages after the first, up to `batch` "
        "(fewer, larger deliveries to sinks that confirm a batch at a time; 0 = take what is there)",
        check=at_least(0),
        flag="",
    )
    batches_in_flight: int = setting(
        1,
        "batch mode only: batches in the handler at once; with more than 1 the next batch is decoded "
        "while earlier ones publish and await their confirmations (each still settled in stream "
        "order; the dedup window learns a batch's keys once it is settled)",
        check=at_least(1),
        flag="",
    )
    backoff_first: float = setting(
        1.0, "seconds before the first redelivery of a failed message", check=at_least(0), flag=""
    )
    backoff_most: float = setting(
        60.0, "longest redelivery delay in seconds (doubling from backoff_first)", check=at_least(0), flag=""
    )
    dedup_window: int = setting(
        100_000,
        "item keys (event ids ...) remembered so a re-published batch reaches the handler once "
        "(0 = off; about 100 bytes of memory per key)",
        check=at_least(0),
        flag="",
    )
    create: bool = setting(
        True, "create the durable consumer when it is missing (where the NATS user may)", flag=""
    )
    bind_wait: float = setting(
        300.0,
        "seconds to keep trying to bind the durable consumer at start (while the cluster cannot "
        "answer, or the consumer is not created yet) before giving up; a refusal is not retried",
        check=at_least(0),
        flag="",
    )
    info_interval: float = setting(
        5.0,
        "seconds between consumer-info reads (the pending / ack-pending / redelivered gauges)",
        check=above(0),
        flag="",
    )
    loop_lag_threshold: float = setting(
        10.0, "/healthz fails when the event loop has not run for this many seconds", check=above(0), flag=""
    )
    drain_timeout: float = setting(
        30.0, "seconds a stop waits for messages already pulled to be handled", check=at_least(0), flag=""
    )
