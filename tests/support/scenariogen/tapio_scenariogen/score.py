"""Scores an engine's correlations against a scenario's expected ones; `python -m` runs it on folders.

Rules (tests/scenarios/public/README.md): an expected correlation is found when a reported one has
the same `type` and `rootCauseEventId`; its `keyEventIds` must then be among the reported `eventIds`
and its confidence level must match. Every other medium/high correlation is a false positive
(so is a second report of the same type and root cause); low ones cost nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from tapio_common.cli import run_cli
from tapio_common.errors import ContractError
from tapio_common.model import Confidence
from tapio_common.model.convert import correlation_from_json
from tapio_common.scenarios import load_scenario, scenario_folders
from tapio_scenariogen.corpus import user_path
from tapio_scenariogen.errors import ScenarioError

LEVELS = ("high", "medium", "low")
EXIT_UNDER_BOUND = 3
PROG = "python -m tapio_scenariogen.score"


@attrs.frozen
class Failure:
    """One thing wrong with a scenario's results."""

    scenario: str
    kind: str  # missing | keys | confidence | false_positive | duplicate | no_result
    type: str
    detail: str


@attrs.frozen
class Reported:
    """A reported correlation reduced to what scoring looks at."""

    type: str
    root: str
    event_ids: frozenset[str]
    level: str


@attrs.frozen
class Outcome:
    """What became of one expected (exact/found/missing) or unexpected (false_positive) correlation."""

    type: str
    status: str  # exact | found | missing | false_positive


@attrs.frozen
class ScoreResult:
    """The score of one scenario (or, added up, of many)."""

    outcomes: tuple[Outcome, ...] = ()
    failures: tuple[Failure, ...] = ()

    def _count(self, *statuses: str) -> int:
        return sum(o.status in statuses for o in self.outcomes)

    @property
    def expected(self) -> int:
        return self._count("exact", "found", "missing")

    @property
    def found(self) -> int:
        return self._count("exact", "found")

    @property
    def exact(self) -> int:
        return self._count("exact")

    @property
    def false_positives(self) -> int:
        return self._count("false_positive")

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        reported = self.found + self.false_positives
        return self.found / reported if reported else 1.0

    @property
    def passed(self) -> bool:
        return self.exact == self.expected and self.false_positives == 0

    def __add__(self, other: ScoreResult) -> ScoreResult:
        return ScoreResult(self.outcomes + other.outcomes, self.failures + other.failures)


def level_of(row: Mapping[str, Any]) -> str:
    """high/medium/low from `confidence` ("CONFIDENCE_HIGH" or "high") or else from `score`."""
    raw = str(row.get("confidence", "")).lower().removeprefix("confidence_")
    if raw in LEVELS:
        return raw
    try:
        value = float(row.get("score", 0.0))
    except (TypeError, ValueError) as e:
        raise ScenarioError(f"correlation has a bad score {row.get('score')!r}") from e
    return Confidence.from_score(value).token


def reported(row: Mapping[str, Any]) -> Reported:
    """Reads a correlation dict in proto3-JSON (camelCase) or proto field (snake_case) naming."""
    root = row.get("rootCauseEventId", row.get("root_cause_event_id", ""))
    ids = row.get("eventIds", row.get("event_ids", ()))
    return Reported(str(row.get("type", "")), str(root), frozenset(str(i) for i in ids), level_of(row))


def score(
    expected: Sequence[Mapping[str, Any]], actual: Sequence[Mapping[str, Any]], scenario: str = ""
) -> ScoreResult:
    """Scores one scenario: `expected` in expected.jsonl form, `actual` as correlation dicts."""
    results = [reported(a) for a in actual]
    used: set[int] = set()
    failures: list[Failure] = []
    outcomes: list[Outcome] = []
    for exp in expected:
        etype, root, level = str(exp["type"]), str(exp["rootCauseEventId"]), str(exp["confidence"]).lower()
        optional = level == "low"  # low expectations are informational: never required, never counted
        matches = [i for i, r in enumerate(results) if r.type == etype and r.root == root and i not in used]
        if not matches:
            if not optional:
                others = sorted({r.type for r in results if r.root == root})
                hint = f" (root cause reported as {', '.join(others)})" if others else ""
                failures.append(Failure(scenario, "missing", etype, f"root cause {root} not reported{hint}"))
                outcomes.append(Outcome(etype, "missing"))
            continue
        hit = results[matches[0]]
        used.add(matches[0])
        if optional:
            continue
        missing_keys = [k for k in exp.get("keyEventIds", ()) if k not in hit.event_ids]
        if missing_keys:
            failures.append(
                Failure(
                    scenario,
                    "keys",
                    etype,
                    f"{len(missing_keys)} key event(s) not in eventIds, e.g. {missing_keys[0]}",
                )
            )
        if hit.level != level:
            failures.append(Failure(scenario, "confidence", etype, f"expected {level}, got {hit.level}"))
        outcomes.append(Outcome(etype, "found" if missing_keys or hit.level != level else "exact"))
    seen = {(results[i].type, results[i].root) for i in used}
    for i, r in enumerate(results):
        if i in used or r.level == "low":
            continue
        kind = "duplicate" if (r.type, r.root) in seen else "false_positive"
        failures.append(Failure(scenario, kind, r.type, f"{r.level} {r.type} rooted at {r.root}"))
        outcomes.append(Outcome(r.type, "false_positive"))
    return ScoreResult(tuple(outcomes), tuple(failures))


def read_results(path: Path) -> list[dict[str, Any]]:
    """A results file: one canonical proto3-JSON Correlation a line (validated against the contract)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ScenarioError(f"cannot read {path}: {e.strerror}") from e
    out: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            corr = correlation_from_json(line)
        except ContractError as e:
            raise ScenarioError(f"{path}:{number}: not a Correlation: {e}") from e
        level = corr.confidence.value if corr.confidence is not Confidence.UNSPECIFIED else ""
        out.append(
            {
                "type": corr.type,
                "rootCauseEventId": corr.root_cause_event_id,
                "eventIds": list(corr.event_ids),
                "confidence": level,
                "score": corr.score,
            }
        )
    return out


def score_folders(scenarios: Path, results: Path) -> dict[str, ScoreResult]:
    """Scores every scenario folder against `<results>/<scenario>.jsonl` (missing file = nothing
    reported); the folders are read by the one scenario loader (tapio_common.scenarios)."""
    out: dict[str, ScoreResult] = {}
    folders = scenario_folders(scenarios)
    if not folders:
        raise ScenarioError(f"no scenario folders (with events.jsonl) under {scenarios}")
    for folder in folders:
        try:
            scenario = load_scenario(folder)
        except ContractError as e:
            raise ScenarioError(str(e)) from e
        name = scenario.name
        expected = list(scenario.expected)
        result_file = results / f"{name}.jsonl"
        if result_file.exists():
            out[name] = score(expected, read_results(result_file), name)
        else:
            res = score(expected, [], name)
            out[name] = attrs.evolve(
                res, failures=(Failure(name, "no_result", "", f"{result_file} missing"), *res.failures)
            )
    return out


def main(argv: Sequence[str]) -> int:
    from tapio_scenariogen.report import format_report

    args = _parser().parse_args(argv)
    scores = score_folders(user_path(args.scenarios), user_path(args.results))
    print(format_report(scores, max_failures=args.max_failures))
    total = sum(scores.values(), ScoreResult())
    if total.recall < args.fail_under_recall or total.precision < args.fail_under_precision:
        return EXIT_UNDER_BOUND
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Scores correlation results against scenario expectations and prints recall/precision\n"
        "per scenario family and per correlation type, then the failures with their scenario names.\n"
        "Found = same type and rootCauseEventId; keyEventIds must be among eventIds and the confidence\n"
        "level must match; any other medium/high correlation is a false positive; low ones cost nothing.",
        epilog="examples:\n"
        "  python -m tapio_scenariogen.score --scenarios build/scenarios --results build/results\n"
        "  for d in build/scenarios/*/; do n=$(basename $d)\n"
        "    tapio-correlator replay --input $d/events.jsonl --output build/results/$n.jsonl; done",
    )
    p.add_argument(
        "--scenarios",
        required=True,
        metavar="DIR",
        help="folder of scenario folders, each with events.jsonl and expected.jsonl",
    )
    p.add_argument(
        "--results",
        required=True,
        metavar="DIR",
        help="folder of <scenario>.jsonl files written by `tapio-correlator replay` (one "
        "Correlation a line); a missing file counts as nothing reported",
    )
    p.add_argument(
        "--max-failures",
        type=int,
        default=50,
        metavar="N",
        help="list at most N failures (default: 50; 0 lists none)",
    )
    p.add_argument(
        "--fail-under-recall",
        type=float,
        default=0.0,
        metavar="R",
        help="exit 3 when the overall recall is below R (0..1, default: 0)",
    )
    p.add_argument(
        "--fail-under-precision",
        type=float,
        default=0.0,
        metavar="P",
        help="exit 3 when the overall precision is below P (0..1, default: 0)",
    )
    return p


if __name__ == "__main__":
    # Run the importable module's main, so every class has one identity (not __main__'s copy).
    from tapio_scenariogen import score as _score

    sys.exit(run_cli(PROG, _score.main))
