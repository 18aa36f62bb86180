"""Formats scores of many scenarios: per-family and per-type recall/precision, then the failures."""

from __future__ import annotations

from collections.abc import Mapping

from tapio_scenariogen.score import ScoreResult


def family_of(scenario: str) -> str:
    """`cascading_failure-kernel_oom-7` -> `cascading_failure`; public `cascade-00` -> `cascade`."""
    return scenario.split("-", 1)[0]


def _pct(value: float, relevant: bool) -> str:
    return f"{100 * value:6.1f}%" if relevant else "      -"


def _row(label: str, scenarios: str, passed: str, r: ScoreResult) -> str:
    return (
        f"{label:<26} {scenarios:>9} {passed:>7} {r.expected:>8} {r.found:>6} {r.exact:>6} {r.false_positives:>4}"
        f" {_pct(r.recall, r.expected > 0)} {_pct(r.precision, r.found + r.false_positives > 0)}"
    )


def format_report(scores: Mapping[str, ScoreResult], max_failures: int = 50) -> str:
    """A plain-text report; `max_failures` bounds the failure listing."""
    header = (
        f"{'':<26} {'scenarios':>9} {'passed':>7} {'expected':>8} {'found':>6} {'exact':>6} {'FP':>4}"
        f" {'recall':>7} {'precision':>7}"
    )
    by_family: dict[str, list[ScoreResult]] = {}
    for name in sorted(scores):
        by_family.setdefault(family_of(name), []).append(scores[name])
    lines = ["by scenario family", header]
    total = ScoreResult()
    for family, results in sorted(by_family.items()):
        summed = sum(results, ScoreResult())
        total = total + summed
        lines.append(_row(family, str(len(results)), str(sum(r.passed for r in results)), summed))
    lines.append(_row("TOTAL", str(len(scores)), str(sum(r.passed for r in scores.values())), total))
    lines += ["", "by correlation type (FP: reported with this type but not expected)", header]
    types = sorted({o.type for o in total.outcomes})
    for t in types:
        lines.append(_row(t, "", "", ScoreResult(tuple(o for o in total.outcomes if o.type == t))))
    failures = total.failures
    lines += ["", f"failures: {len(failures)}"]
    for f in failures[:max_failures]:
        lines.append(f"  {f.scenario:<44} {f.kind:<14} {f.type:<24} {f.detail}")
    if len(failures) > max_failures:
        lines.append(f"  ... {len(failures) - max_failures} more (raise --max-failures)")
    return "\n".join(lines)
