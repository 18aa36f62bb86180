"""Publisher settings, declared once (defaults and help) and built by the loader of
`tapio_common.config` from the `publisher:` sub-section of a component's YAML section."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from tapio_common.config.loader import load_settings
from tapio_common.config.schema import setting
from tapio_common.errors import ConfigError
from tapio_publisher.codec import Compression
from tapio_publisher.spool import FsyncPolicy

MIB = 1024 * 1024


def _compression(value: Compression | str) -> Compression:
    return value if isinstance(value, Compression) else Compression.parse(value)


def _fsync(value: FsyncPolicy | str) -> FsyncPolicy:
    return value if isinstance(value, FsyncPolicy) else FsyncPolicy.parse(value)


@attrs.frozen(kw_only=True)
class PublisherSettings:
    """How the publisher batches, pipelines, retries and spools. Defaults suit production.

    `batch_max_events=1` publishes every event as its own message (`Tapio-Encoding: event`,
    `Nats-Msg-Id` = event id); above 1, events of one subject share an EventBatch message
    (`Nats-Msg-Id` = batch id). Batches never exceed `min(batch_max_bytes, max_msg_size, server
    max_payload) - headers`.
    """

    spool_dir: str = setting(
        help="directory of the durable spool (default <data dir>/spool of the component)",
        metavar="DIR",
    )
    name: str = setting("tapio-publisher", "name of this publisher in logs and metrics", metavar="NAME")
    max_msg_size: int = setting(
        1 * MIB, "the stream's max_msg_size in bytes; also capped by the server's max_payload"
    )
    batch_max_events: int = setting(
        1000, "events per EventBatch message; 1 publishes every event as its own message"
    )
    batch_max_bytes: int = setting(1 * MIB, "bytes per EventBatch message")
    batch_linger: float = setting(0.02, "seconds a batch may wait for more events", metavar="SECONDS")
    compression: Compression = setting(Compression.ZSTD, "compression of batches", converter=_compression)
    compression_level: int = setting(
        -3, "zstd level (-3, fast mode: ~30% less CPU than level 1 for ~40% more bytes)"
    )
    compress_min_bytes: int = setting(2048, "batches smaller than this go uncompressed")
    max_inflight: int = setting(32, "messages published and not yet acknowledged (use ~256 in event mode)")
    atomic_max: int = setting(1000, "messages of one atomic batch (publish_atomic; the server allows 1000)")
    ack_timeout: float = setting(
        5.0, "seconds without an ack before a message is spooled for retry", metavar="SECONDS"
    )
    spool_max_bytes: int = setting(
        1024 * MIB, "bytes the spool may hold (beyond, events are dropped and counted)"
    )
    spool_segment_bytes: int = setting(64 * MIB, "bytes per spool segment file")
    spool_fsync: FsyncPolicy = setting(
        FsyncPolicy.INTERVAL, "when the spool is synced to disk", converter=_fsync
    )
    spool_fsync_interval: float = setting(
        1.0, "seconds between spool syncs (interval policy)", metavar="SECONDS"
    )
    spool_queue: int = setting(256, "messages waiting for the spool writer before producers wait")
    replay_chunk: int = setting(64, "spooled messages re-published per round trip")
    retry_backoff: float = setting(
        0.5, "first pause after a failed replay; doubles up to retry_backoff_max", metavar="SECONDS"
    )
    retry_backoff_max: float = setting(5.0, "longest pause between failed replays", metavar="SECONDS")
    shutdown_timeout: float = setting(
        10.0, "seconds close() waits for acks before spooling the rest", metavar="SECONDS"
    )
    tick: float = setting(0.05, "how often timeouts and the connection state are checked", metavar="SECONDS")

    def __attrs_post_init__(self) -> None:
        checks: list[tuple[bool, str]] = [
            (bool(self.spool_dir), "spool_dir must be set (the component's data dir)"),
            (self.batch_max_events >= 1, "batch_max_events must be >= 1"),
            (self.batch_max_bytes >= 4096, "batch_max_bytes must be >= 4096"),
            (self.max_msg_size >= 4096, "max_msg_size must be >= 4096"),
            (self.batch_linger >= 0, "batch_linger must be >= 0"),
            (self.max_inflight >= 1, "max_inflight must be >= 1"),
            (2 <= self.atomic_max <= 1000, "atomic_max must be between 2 and 1000"),
            (self.ack_timeout > 0, "ack_timeout must be > 0"),
            (self.spool_segment_bytes >= 4096, "spool_segment_bytes must be >= 4096"),
            (self.spool_max_bytes >= 2 * self.spool_segment_bytes, "spool_max_bytes must be >= 2 x segment"),
            (self.spool_queue >= 1 and self.replay_chunk >= 1, "spool_queue and replay_chunk must be >= 1"),
            (0 < self.retry_backoff <= self.retry_backoff_max, "need 0 < retry_backoff <= retry_backoff_max"),
            (self.tick > 0 and self.shutdown_timeout >= 0, "tick must be > 0, shutdown_timeout >= 0"),
        ]
        for ok, problem in checks:
            if not ok:
                raise ConfigError(f"bad publisher setting: {problem}")

    @property
    def batching(self) -> bool:
        return self.batch_max_events > 1

    @classmethod
    def from_section(cls, section: Mapping[str, Any], data_dir: str, **overrides: Any) -> PublisherSettings:
        """Settings from the `publisher:` sub-section of a component's YAML section (a Section names
        its file and lines in errors), the spool under `<data_dir>/spool` unless set; `overrides`
        are what the component's code fixes (e.g. `batch_max_events=1`)."""
        return load_settings(
            cls,
            section,
            overrides=overrides,
            defaults={"spool_dir": str(Path(data_dir) / "spool")},
            name="publisher",
        )
