"""Every public scenario replays to exactly its expected correlations and no other medium/high one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tapio_common.model import Correlation
from tapio_common.model.convert import correlation_from_json, correlation_to_json
from tapio_correlator.replay import ReplayStats, read_events, replay
from tapio_correlator.testing import scenarios_dir

SCENARIOS = sorted(p.parent for p in scenarios_dir().glob("*/events.jsonl"))


def _replay(folder: Path) -> list[Correlation]:
    with (folder / "events.jsonl").open(encoding="utf-8") as f:
        return replay(read_events(f, str(folder), ReplayStats())).correlations


def test_the_public_scenarios_are_there() -> None:
    assert len(SCENARIOS) >= 5


@pytest.mark.parametrize("folder", SCENARIOS, ids=lambda p: p.name)
def test_public_scenario(folder: Path) -> None:
    expected = [
        json.loads(line) for line in (folder / "expected.jsonl").read_text().splitlines() if line.strip()
    ]
    # What the CLI writes is canonical proto3 JSON that reads back to the same correlations.
    result = [correlation_from_json(correlation_to_json(c)) for c in _replay(folder)]
    matched: set[str] = set()
    for exp in expected:
        hits = [
            c for c in result if c.type == exp["type"] and c.root_cause_event_id == exp["rootCauseEventId"]
        ]
        assert len(hits) == 1, (
            f"{folder.name}: {exp['type']} rooted at {exp['rootCauseEventId']} not reported once"
        )
        hit = hits[0]
        assert set(exp["keyEventIds"]) <= set(hit.event_ids), f"{folder.name}: key events missing"
        assert hit.confidence.token == exp["confidence"]
        assert hit.event_ids[0] == hit.root_cause_event_id
        assert len(hit.evidence) == len(hit.event_ids)
        assert hit.summary
        assert hit.revision >= 1
        matched.add(hit.id)
    extra = [(c.type, c.confidence.token) for c in result if c.id not in matched and c.score >= 0.5]
    assert extra == [], f"{folder.name}: unexpected medium/high correlations"
