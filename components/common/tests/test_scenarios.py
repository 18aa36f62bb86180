"""The one scenario loader: the public scenarios load with their expectations; bad input names file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tapio_common.errors import ContractError
from tapio_common.scenarios import all_events, event_lines, load_scenarios, public_root


def test_public_scenarios_load_with_what_they_expect() -> None:
    scenarios = load_scenarios()
    assert len(scenarios) >= 5
    for sc in scenarios:
        assert sc.path.parent == public_root()
        assert len(sc.events) == len(sc.lines) > 0
        assert all("type" in exp for exp in sc.expected)
    assert sum(bool(sc.expected) for sc in scenarios) >= 4  # network_unlinked expects nothing
    assert len(all_events()) == len(event_lines()) == sum(len(sc.lines) for sc in scenarios)
    assert [sc.name for sc in load_scenarios(pattern="cascade*")] == ["cascade-00"]


def test_each_load_gives_fresh_messages() -> None:
    first, second = load_scenarios()[0], load_scenarios()[0]
    first.events[0].id = "changed"
    assert second.events[0].id != "changed"


def test_bad_lines_and_missing_folders_are_named(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "events.jsonl").write_text('{"id": "a"}\n\n{"nope": 1}\n')
    with pytest.raises(ContractError, match=r"bad/events.jsonl:3: not a valid Event"):
        load_scenarios(tmp_path)
    (tmp_path / "bad" / "events.jsonl").write_text('{"id": "a"}\n')
    (tmp_path / "bad" / "expected.jsonl").write_text("{oops\n")
    with pytest.raises(ContractError, match=r"bad/expected.jsonl:1: not JSON"):
        load_scenarios(tmp_path)
    with pytest.raises(ContractError, match="no scenarios under"):
        load_scenarios(tmp_path / "none")
