"""Every public scenario replays to exactly its expected correlations and no other medium/high one."""

from __future__ import annotations

import pytest

from tapio_common.model import Correlation
from tapio_common.model.convert import correlation_from_json, correlation_to_json
from tapio_common.scenarios import Scenario, load_scenarios
from tapio_correlator.replay import replay

SCENARIOS = load_scenarios()


def _replay(scenario: Scenario) -> list[Correlation]:
    return replay(iter(scenario.events)).correlations


def test_the_public_scenarios_are_there() -> None:
    assert len(SCENARIOS) >= 5


@pytest.mark.parametrize("folder", SCENARIOS, ids=lambda s: s.name)
def test_public_scenario(folder: Scenario) -> None:
    expected = folder.expected
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
