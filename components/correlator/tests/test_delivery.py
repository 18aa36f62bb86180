"""Real delivery: redeliveries are no-ops, a node's late spool and skewed clocks change no incident.

Over the generated corpus of every family and variant (the scenario generator is the engine's
independent oracle): the final incidents of a scenario delivered cleanly must equal those of the
same scenario delivered twice in part, with one node's host collectors 2 minutes late, or with
one node's clock 1 s off.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

import pytest

from tapio_common.model import Correlation, Event
from tapio_correlator.engine import Engine
from tapio_correlator.replay import final_revisions
from tapio_scenariogen import generate, variants
from tapio_scenariogen.delivery import host_nodes, node_late, node_skewed, redelivered
from tapio_scenariogen.families import FAMILIES

SEEDS = range(3)
CASES = [(f, v, s) for f in sorted(FAMILIES) for v in variants(f) for s in SEEDS]


def _final(events: Iterable[Event]) -> list[Correlation]:
    engine = Engine()
    out: list[Correlation] = []
    for ev in events:
        out += engine.process(ev)
    return final_revisions(out + engine.finish())


def _incidents(correlations: Sequence[Correlation]) -> set[tuple[str, str, str, frozenset[str]]]:
    """What an on-call engineer is shown: type, root cause, confidence and the events, per incident."""
    return {
        (c.type, c.root_cause_event_id, c.confidence.token, frozenset(c.event_ids))
        for c in correlations
        if c.score >= 0.5
    }


def _name(case: tuple[str, str, int]) -> str:
    return "-".join(map(str, case))


@pytest.mark.parametrize("case", CASES, ids=_name)
def test_redelivered_events_change_nothing(case: tuple[str, str, int]) -> None:
    family, variant, seed = case
    events = list(generate(family, seed, variant).events)
    clean = _final(events)
    twice = redelivered(events, random.Random(seed))
    assert len(twice) > len(events)
    assert _final(twice) == clean  # ids, revisions, scores, members: exactly the clean result


@pytest.mark.parametrize("case", CASES, ids=_name)
def test_a_node_whose_collectors_deliver_two_minutes_late_changes_no_incident(
    case: tuple[str, str, int],
) -> None:
    family, variant, seed = case
    events = list(generate(family, seed, variant).events)
    clean = _incidents(_final(events))
    for node in host_nodes(events):
        late = node_late(events, node, delay_s=120.0)
        assert _incidents(_final(late)) == clean, f"{node}'s events 2 minutes late"


@pytest.mark.parametrize("case", CASES, ids=_name)
def test_a_node_clock_one_second_off_changes_no_incident(case: tuple[str, str, int]) -> None:
    family, variant, seed = case
    events = list(generate(family, seed, variant).events)
    clean = _incidents(_final(events))
    for node in host_nodes(events):
        for offset in (-1.0, 1.0):
            skewed = node_skewed(events, node, offset)
            assert _incidents(_final(skewed)) == clean, f"{node}'s clock {offset:+} s"
