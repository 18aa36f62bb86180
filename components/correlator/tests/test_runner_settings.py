"""The runner's settings: the `correlator:` config section (engine under `engine:`), flags over it,
clear refusals naming the key and the file; serve and replay share the engine's flags and defaults."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from tapio_common.config import load_settings, load_yaml
from tapio_common.errors import ConfigError
from tapio_correlator.cli import build_parser
from tapio_correlator.engine import EngineConfig
from tapio_correlator.service.settings import PUBLISHER_SECTION, RunnerSettings


def serve_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def test_defaults_suit_a_live_stream() -> None:
    s = load_settings(RunnerSettings, {})
    assert s.engine.reorder_slack_ns == 500_000_000 == EngineConfig().reorder_slack_ns
    assert s.state_bucket == "TAPIO_CORRELATOR_STATE"
    assert s.embedded_port == 4222


def test_flags_win_over_the_file_and_the_publisher_keeps_its_own(tmp_path: Path) -> None:
    conf = tmp_path / "correlator.yaml"
    conf.write_text(
        "correlator:\n  fetch_batch: 10\n  snapshot_interval: '5'\n"
        "  engine:\n    reorder_slack_seconds: 2\n  publisher:\n    batch_linger: 0.1\n"
    )
    section = load_yaml(str(conf)).child("correlator")
    s = load_settings(RunnerSettings, section, args=serve_args("--fetch-batch", "32"), env={},
                      allow=(PUBLISHER_SECTION,))  # fmt: skip
    assert (s.fetch_batch, s.snapshot_interval, s.replicas) == (32, 5.0, 1)
    assert s.engine.reorder_slack_ns == 2_000_000_000
    s = load_settings(RunnerSettings, section, args=serve_args("--reorder-slack", "0.25"), env={},
                      allow=(PUBLISHER_SECTION,))  # fmt: skip
    assert s.engine.reorder_slack_ns == 250_000_000


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"fetch_batchs": 1}, "unknown setting correlator.fetch_batchs"),
        ({"fetch_batch": "many"}, "correlator.fetch_batch: expected a whole number"),
        ({"fetch_batch": 0}, "fetch_batch must be >= 1"),
        ({"idle_advance": 0}, "idle_advance must be > 0"),
        ({"replicas": 2}, "replicas must be one of 1, 3, 5"),
        ({"provision": "perhaps"}, "provision: expected true or false"),
        (
            {"engine": {"reorder_slack_seconds": -1}},
            "correlator.engine.reorder_slack_seconds: reorder_slack_seconds must be >= 0",
        ),
        ({"reorder_slack": 1}, "unknown setting correlator.reorder_slack"),
    ],
)
def test_bad_settings_name_the_setting(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(RunnerSettings, section, name="correlator", allow=(PUBLISHER_SECTION,))


def test_serve_and_replay_take_the_same_engine_flags() -> None:
    def engine_flags(command: str) -> set[str]:
        action: Any = build_parser()._subparsers._group_actions[0]  # type: ignore[union-attr]
        sub = action.choices[command]
        return {
            opt for group in sub._action_groups if group.title and group.title.startswith("engine settings")
            for action in group._group_actions for opt in action.option_strings
        }  # fmt: skip

    assert engine_flags("serve") == engine_flags("replay")
    assert "--reorder-slack" in engine_flags("serve")
