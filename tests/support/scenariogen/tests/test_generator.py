"""The generator: deterministic, contract-valid, time-ordered scenarios whose expectations hold."""

from __future__ import annotations

import re

import pytest

from tapio_common.model.convert import event_from_json, event_to_json
from tapio_scenariogen import generate, variants
from tapio_scenariogen.check import problems
from tapio_scenariogen.errors import ScenarioError
from tapio_scenariogen.families import FAMILIES, QUIET_FAMILIES

ALL = [(f, v) for f in sorted(FAMILIES) for v in variants(f)]
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
POD_NAME = re.compile(r"^[a-z0-9-]+-[0-9a-z]{7,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$")


@pytest.mark.parametrize(("family", "variant"), ALL)
def test_same_seed_same_scenario_and_other_seed_differs(family: str, variant: str) -> None:
    a, b = generate(family, 7, variant), generate(family, 7, variant)
    assert [event_to_json(e) for e in a.events] == [event_to_json(e) for e in b.events]
    assert a.expected == b.expected
    c = generate(family, 8, variant)
    assert [e.id for e in c.events] != [e.id for e in a.events]


def test_drawn_variant_equals_explicit_variant() -> None:
    for family in FAMILIES:
        drawn = generate(family, 3)
        explicit = generate(family, 3, drawn.variant)
        assert drawn.name == explicit.name == f"{family}-{drawn.variant}-3"
        assert [e.id for e in drawn.events] == [e.id for e in explicit.events]


@pytest.mark.parametrize(("family", "variant"), ALL)
def test_events_parse_are_ordered_and_expectations_refer_to_them(family: str, variant: str) -> None:
    for seed in range(3):
        s = generate(family, seed, variant)
        assert len(s.events) > 30
        for event in s.events:
            assert event_from_json(event_to_json(event)) == event
            assert UUID.match(event.id)
        times = [e.time for e in s.events]
        assert times == sorted(times)
        ids = {e.id for e in s.events}
        assert len(ids) == len(s.events)
        for exp in s.expected:
            assert set(exp) == {"type", "rootCauseEventId", "keyEventIds", "confidence"}
            assert exp["rootCauseEventId"] in ids
            assert exp["keyEventIds"][0] == exp["rootCauseEventId"]
            assert set(exp["keyEventIds"]) <= ids
            assert exp["confidence"] in ("high", "medium")
        if family in QUIET_FAMILIES:
            assert s.expected == ()
        else:
            assert s.expected


@pytest.mark.parametrize(("family", "variant"), ALL)
def test_scenarios_follow_the_correlation_rules(family: str, variant: str) -> None:
    """The independent checker finds each expected pattern intact and no other pattern."""
    for seed in range(4):
        s = generate(family, seed, variant)
        assert problems(s.events, s.expected, s.quiet) == [], s.name


@pytest.mark.parametrize(("family", "variant"), [fv for fv in ALL if fv[0] not in QUIET_FAMILIES])
def test_each_expectation_is_a_real_pattern(family: str, variant: str) -> None:
    """Dropping an expectation leaves its pattern behind as a stray one: it is really in the events."""
    for seed in range(2):
        s = generate(family, seed, variant)
        for i in range(len(s.expected)):
            rest = [e for j, e in enumerate(s.expected) if j != i]
            found = problems(s.events, rest, quiet=False)
            assert any("stray pattern" in p for p in found), (s.name, s.expected[i]["type"])


def test_background_looks_like_a_cluster() -> None:
    s = generate("crash_loop", 11, "high")
    pods = {e.context.pod for e in s.events if e.type == "pods" and e.action == "created"}
    assert len(pods) >= 4
    assert all(POD_NAME.match(p) for p in pods)
    kinds = {(e.source.name, e.type, e.action) for e in s.events}
    for kind in [("K8S", "deployments", "created"), ("K8S", "services", "created"), ("K8S", "pods", "ready")]:
        assert kind in kinds
    noise = {e.type for e in s.events if e.source.name in ("SYSTEMD", "EBPF", "CNI")}
    assert {"unit", "process_exec", "interface"} <= noise
    first_incident = min(e.time for e in s.events if e.id == s.expected[0]["rootCauseEventId"])
    setup = [e for e in s.events if e.action == "created" and e.type in ("deployments", "services")]
    assert max(e.time for e in setup) < first_incident


def test_mixed_two_incidents_expects_two_unlinked_correlations() -> None:
    for seed in range(5):
        s = generate("mixed", seed, "two_incidents")
        assert len(s.expected) == 2
        assert s.expected[0]["type"] != s.expected[1]["type"]
        assert not set(s.expected[0]["keyEventIds"]) & set(s.expected[1]["keyEventIds"])


def test_confidence_follows_the_variant() -> None:
    assert {generate("crash_loop", i, "high").expected[0]["confidence"] for i in range(5)} == {"high"}
    assert {generate("crash_loop", i, "medium").expected[0]["confidence"] for i in range(5)} == {"medium"}
    assert generate("node_failure", 1, "no_pods").expected[0]["confidence"] == "medium"
    assert generate("cascading_failure", 1, "pod_oom_no_service").expected[0]["confidence"] == "medium"
    assert generate("mixed", 2, "oom_restarts").expected[0]["type"] == "resource_pressure"


def test_unknown_family_or_variant_is_a_clear_error() -> None:
    with pytest.raises(ScenarioError, match="unknown family 'nope'"):
        generate("nope", 1)
    with pytest.raises(ScenarioError, match="unknown variant 'nope' of crash_loop"):
        generate("crash_loop", 1, "nope")
