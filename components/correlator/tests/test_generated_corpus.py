"""A seeded corpus of generated scenarios (every family and variant): full recall and precision."""

from __future__ import annotations

import json

import pytest

from tapio_common.model.convert import correlation_to_json
from tapio_correlator.engine import Engine
from tapio_correlator.replay import final_revisions
from tapio_scenariogen import generate, variants
from tapio_scenariogen.families import FAMILIES
from tapio_scenariogen.score import ScoreResult, score

SEEDS = range(4)


def _score(family: str, variant: str, seed: int) -> ScoreResult:
    scenario = generate(family, seed, variant)
    engine = Engine()
    revisions = []
    for ev in scenario.events:
        revisions += engine.process(ev)
    revisions += engine.finish()
    rows = [json.loads(correlation_to_json(c)) for c in final_revisions(revisions)]
    return score([dict(e) for e in scenario.expected], rows, scenario.name)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_generated_family(family: str) -> None:
    total = ScoreResult()
    for variant in variants(family):
        for seed in SEEDS:
            total = total + _score(family, variant, seed)
    problems = [f"{f.scenario}: {f.kind} {f.type}: {f.detail}" for f in total.failures]
    assert problems == []
    assert total.recall == 1.0
    assert total.precision == 1.0
    assert total.exact == total.expected, "key events and confidence levels match too"
