"""The runner's settings: the `correlator:` config section, flags over it, clear refusals."""

from __future__ import annotations

import pytest

from tapio_common.errors import ConfigError
from tapio_correlator.service.settings import RunnerSettings


def test_defaults_suit_a_live_stream() -> None:
    s = RunnerSettings.from_section({})
    assert s.reorder_slack == 0.5
    assert s.state_bucket == "TAPIO_CORRELATOR_STATE"
    assert s.embedded_port == 4222


def test_flags_win_over_the_section_and_the_publisher_keeps_its_own() -> None:
    section = {"fetch_batch": 10, "snapshot_interval": "5", "publisher": {"batch_linger": 0.1}}
    s = RunnerSettings.from_section(section, fetch_batch=32, replicas=None)
    assert s.fetch_batch == 32
    assert s.snapshot_interval == 5.0
    assert s.replicas == 1


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"fetch_batchs": 1}, "unknown key 'fetch_batchs'"),
        ({"fetch_batch": "many"}, "fetch_batch must be a whole number"),
        ({"fetch_batch": 0}, "fetch_batch must be >= 1"),
        ({"idle_advance": 0}, "idle_advance must be > 0"),
        ({"replicas": 2}, "replicas must be 1, 3 or 5"),
        ({"provision": "yes"}, "provision must be true or false"),
        ({"reorder_slack": -1}, "reorder slack must be >= 0"),
    ],
)
def test_bad_settings_name_the_setting(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RunnerSettings.from_section(section)
