"""The scorer: public expectations score 100 % against themselves, and each failure kind is counted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tapio_common.cli import run_cli
from tapio_common.model import Confidence, Correlation
from tapio_common.model.convert import correlation_to_json
from tapio_common.model.fast import event_from_pb
from tapio_common.scenarios import load_scenario, public_root, scenario_folders
from tapio_scenariogen.check import problems
from tapio_scenariogen.errors import ScenarioError
from tapio_scenariogen.report import format_report
from tapio_scenariogen.score import main, score, score_folders

PUBLIC = public_root()
LEVEL = {"high": "CONFIDENCE_HIGH", "medium": "CONFIDENCE_MEDIUM", "low": "CONFIDENCE_LOW"}


def _public() -> list[Path]:
    folders = scenario_folders(PUBLIC)
    assert len(folders) >= 5
    return folders


def _expected(folder: Path) -> list[dict[str, Any]]:
    return list(load_scenario(folder).expected)


def _as_reported(exp: dict[str, Any], extra: tuple[str, ...] = ()) -> Correlation:
    ids: Any = (*exp["keyEventIds"], *extra)  # Any: mypy's attrs plugin cannot type converter=tuple
    return Correlation(
        id=f"c-{exp['rootCauseEventId']}",
        type=exp["type"],
        confidence=Confidence(LEVEL[exp["confidence"]]),
        score=0.9 if exp["confidence"] == "high" else 0.6,
        root_cause_event_id=exp["rootCauseEventId"],
        event_ids=ids,
    )


def _dicts(corrs: list[Correlation]) -> list[dict[str, Any]]:
    return [json.loads(correlation_to_json(c)) for c in corrs]


@pytest.mark.parametrize("folder", _public(), ids=lambda p: p.name)
def test_public_expectations_score_full_against_themselves(folder: Path) -> None:
    expected = _expected(folder)
    result = score(expected, _dicts([_as_reported(e, ("extra-id",)) for e in expected]), folder.name)
    assert (result.recall, result.precision, result.passed) == (1.0, 1.0, True)
    assert result.failures == ()


@pytest.mark.parametrize("folder", _public(), ids=lambda p: p.name)
def test_empty_results_score_zero_recall(folder: Path) -> None:
    expected = _expected(folder)
    result = score(expected, [], folder.name)
    assert result.found == 0
    assert result.false_positives == 0
    if expected:
        assert result.recall == 0.0
        assert {f.kind for f in result.failures} == {"missing"}
    else:
        assert result.passed


@pytest.mark.parametrize("folder", _public(), ids=lambda p: p.name)
def test_public_scenarios_pass_the_checker(folder: Path) -> None:
    events = [event_from_pb(ev) for ev in load_scenario(folder).events]
    expected = _expected(folder)
    assert problems(events, expected, quiet=not expected) == []


def test_each_failure_kind() -> None:
    exp = {
        "type": "crash_loop",
        "rootCauseEventId": "r",
        "keyEventIds": ["r", "a", "b"],
        "confidence": "high",
    }
    right = {
        "type": "crash_loop",
        "rootCauseEventId": "r",
        "eventIds": ["r", "a", "b"],
        "confidence": "CONFIDENCE_HIGH",
    }
    low_fp = {
        "type": "potential_issue",
        "rootCauseEventId": "x",
        "eventIds": ["x"],
        "confidence": "CONFIDENCE_LOW",
    }
    assert score([exp], [right, low_fp]).passed
    medium = dict(right, confidence="CONFIDENCE_MEDIUM")
    result = score([exp], [medium], "s1")
    assert (result.found, result.exact, [f.kind for f in result.failures]) == (1, 0, ["confidence"])
    result = score([exp], [dict(right, eventIds=["r", "a"])], "s1")
    assert [f.kind for f in result.failures] == ["keys"]
    assert result.recall == 1.0
    other = dict(right, type="cascading_failure")
    result = score([exp], [other], "s1")
    assert (result.recall, result.precision, result.false_positives) == (0.0, 0.0, 1)
    assert "reported as cascading_failure" in result.failures[0].detail
    result = score([exp], [right, right])
    assert [f.kind for f in result.failures] == ["duplicate"]
    assert result.precision == 0.5
    by_score = {"type": "crash_loop", "root_cause_event_id": "r", "event_ids": ["r", "a", "b"], "score": 0.85}
    assert score([exp], [by_score]).passed


def test_folders_report_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    results.mkdir()
    for folder in _public():
        corrs = [_as_reported(e) for e in _expected(folder)]
        if folder.name.startswith("crash"):
            continue  # no result file for this one
        (results / f"{folder.name}.jsonl").write_text("".join(correlation_to_json(c) + "\n" for c in corrs))
    scores = score_folders(PUBLIC, results)
    assert scores["cascade-00"].passed
    assert not scores["crash-00"].passed
    text = format_report(scores)
    assert "cascade" in text
    assert "TOTAL" in text
    assert "no_result" in text
    assert "crash-00" in text
    argv = ["--scenarios", str(PUBLIC), "--results", str(results)]
    assert run_cli("score", main, argv) == 0
    assert run_cli("score", main, [*argv, "--fail-under-recall", "0.9"]) == 3
    capsys.readouterr()
    (results / "node-00.jsonl").write_text("{not json\n")
    assert run_cli("score", main, argv) == 1
    assert "node-00.jsonl:1: not a Correlation" in capsys.readouterr().err
    with pytest.raises(ScenarioError, match="no scenario folders"):
        score_folders(tmp_path, results)
