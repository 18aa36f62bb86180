"""Publisher settings come from a YAML section with clear errors for bad keys and values."""

from __future__ import annotations

import pytest

from tapio_common.errors import ConfigError
from tapio_publisher.codec import Compression
from tapio_publisher.settings import PublisherSettings
from tapio_publisher.spool import FsyncPolicy


def test_from_section_with_defaults_and_overrides() -> None:
    s = PublisherSettings.from_section(
        {"batch_max_events": "500", "compression": "lz4", "spool_fsync": "always"}, "/var/lib/tapio"
    )
    assert s.spool_dir == "/var/lib/tapio/spool"
    assert (s.batch_max_events, s.compression, s.spool_fsync) == (500, Compression.LZ4, FsyncPolicy.ALWAYS)
    assert s.batching
    assert not PublisherSettings(spool_dir="/x", batch_max_events=1).batching


def test_the_spool_follows_the_data_dir_unless_set() -> None:
    assert PublisherSettings.from_section({"spool_dir": "/s"}, "/d").spool_dir == "/s"
    assert PublisherSettings.from_section({}, "/d", batch_max_events=1).batch_max_events == 1


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"batch_size": 10}, "unknown setting publisher.batch_size"),
        (
            {"compression": "gzip"},
            "bad setting publisher.compression: expected one of none|zstd|lz4, got 'gzip'",
        ),
        ({"max_inflight": "many"}, "bad setting publisher.max_inflight: expected a whole number, got 'many'"),
        ({"max_inflight": 0}, "max_inflight must be >= 1"),
        ({"spool_max_bytes": 1000}, "spool_max_bytes must be >= 2 x segment"),
    ],
)
def test_bad_settings_are_one_clear_config_error(section: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        PublisherSettings.from_section(section, "/tmp")
