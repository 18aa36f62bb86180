"""The `scenariogen` command: writes a corpus of generated correlation scenarios to a folder."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tapio_scenariogen.corpus import user_path, write_corpus
from tapio_scenariogen.errors import ScenarioError
from tapio_scenariogen.families import FAMILIES, QUIET_FAMILIES

PROG = "scenariogen"


def _family_list() -> str:
    rows = []
    for family, variants in FAMILIES.items():
        note = " (no medium/high expected)" if family in QUIET_FAMILIES else ""
        rows.append(f"  {family}{note}: {', '.join(sorted(variants))}")
    return "\n".join(rows)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Generates correlation scenarios like tests/scenarios/public: for each family and seed a folder\n"
            "<family>-<variant>-<seed>/ with events.jsonl (canonical proto3-JSON Events in time order)\n"
            "and expected.jsonl (the correlations the engine must report), plus an index.jsonl.\n"
            "The same family and seed always give the same scenario; the variant is drawn from the seed."
        ),
        epilog=(
            "families and variants:\n" + _family_list() + "\n\n"
            "examples:\n"
            "  scenariogen --out build/scenarios --count 20\n"
            "  scenariogen --out build/scenarios --seed 1000 --count 5 --family crash_loop near_miss\n"
            "  scenariogen --out build/scenarios --all-variants --count 3\n"
            "  scenariogen --out build/scenarios --family mixed --variant two_incidents --count 10\n"
            "then score an engine's results with: python -m tapio_scenariogen.score --help\n\n"
            "environment: TAPIO_TRACEBACK=1 shows the traceback of an error."
        ),
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="folder to write into (created; same names are overwritten)",
    )
    p.add_argument(
        "--count", type=int, default=10, metavar="N", help="seeds per family (and variant), default: 10"
    )
    p.add_argument(
        "--seed", type=int, default=0, metavar="S", help="first seed; seeds S..S+N-1 are used (default: 0)"
    )
    p.add_argument(
        "--family",
        action="extend",
        nargs="+",
        choices=sorted(FAMILIES),
        metavar="F",
        help="families to generate (one or more, repeatable; default: every family)",
    )
    p.add_argument(
        "--variant",
        action="extend",
        nargs="+",
        default=[],
        metavar="V",
        help="only these variants of the chosen families (default: one drawn from each seed)",
    )
    p.add_argument(
        "--all-variants",
        action="store_true",
        help="generate every variant of each family for each seed instead of drawing one",
    )
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    if args.count < 1:
        raise ScenarioError("--count must be at least 1")
    families = args.family or list(FAMILIES)
    written = write_corpus(
        user_path(args.out),
        range(args.seed, args.seed + args.count),
        families,
        all_variants=args.all_variants,
        only_variants=args.variant,
    )
    expected = sum(len(s.expected) for s in written)
    print(f"{PROG}: wrote {len(written)} scenarios ({expected} expected correlations) to {args.out}")
    return 0
