"""Writes scenario folders like tests/scenarios/public: events.jsonl + expected.jsonl (the file names
of tapio_common.scenarios, the one loader, which is also how the checker and the scorer read them)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tapio_common.model import Event
from tapio_common.model.convert import event_to_json
from tapio_common.scenarios import EVENTS_FILE, EXPECTED_FILE
from tapio_scenariogen.errors import ScenarioError
from tapio_scenariogen.generator import Scenario, generate, variants

INDEX_FILE = "index.jsonl"


def user_path(text: str) -> Path:
    """A path given on the command line; under `bazel run` relative paths are the caller's, not runfiles'."""
    path = Path(text)
    base = os.environ.get("BUILD_WORKING_DIRECTORY")
    return Path(base) / path if base and not path.is_absolute() else path


_MAPS = frozenset({"labels", "conditions", "selector", "attributes"})


def _sorted_maps(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        items = sorted(value.items()) if key in _MAPS else value.items()
        return {k: _sorted_maps(v, k) for k, v in items}
    if isinstance(value, list):
        return [_sorted_maps(v) for v in value]
    return value


def event_line(event: Event) -> str:
    """The event as one canonical proto3-JSON line, compact, with map entries sorted by key.

    (Protobuf writes map entries in an order that depends on the process's hash seed; sorting them
    makes the same scenario byte-identical in every process.)
    """
    doc = json.loads(event_to_json(event))
    return json.dumps(_sorted_maps(doc), separators=(",", ":"), ensure_ascii=False)


def write_scenario(scenario: Scenario, out_dir: Path) -> Path:
    """Writes `<out_dir>/<name>/events.jsonl` and `expected.jsonl`; returns the folder."""
    folder = out_dir / scenario.name
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / EVENTS_FILE).open("w", encoding="utf-8") as f:
        for event in scenario.events:
            f.write(event_line(event) + "\n")
    with (folder / EXPECTED_FILE).open("w", encoding="utf-8") as f:
        for exp in scenario.expected:
            f.write(json.dumps(exp) + "\n")
    return folder


def write_corpus(
    out_dir: str | Path,
    seeds: Iterable[int],
    families: Iterable[str],
    all_variants: bool = False,
    only_variants: Iterable[str] = (),
) -> list[Scenario]:
    """Generates and writes one scenario per (family, seed), or per (family, variant, seed).

    `all_variants` writes every variant of each family for each seed; `only_variants` restricts to
    the named variants (of whichever family has them). An `index.jsonl` lists what was written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fams = list(families)
    wanted = set(only_variants)
    known = {v for f in fams for v in variants(f)}
    if wanted - known:
        raise ScenarioError(f"unknown variant(s) for {', '.join(fams)}: {', '.join(sorted(wanted - known))}")
    seed_list = list(seeds)
    written: list[Scenario] = []
    for family in fams:
        if wanted:
            chosen: list[str | None] = [v for v in variants(family) if v in wanted]
        elif all_variants:
            chosen = list(variants(family))
        else:
            chosen = [None]
        for variant in chosen:
            for seed in seed_list:
                scenario = generate(family, seed, variant)
                write_scenario(scenario, out)
                written.append(scenario)
    with (out / INDEX_FILE).open("w", encoding="utf-8") as f:
        for s in written:
            row = {
                "name": s.name,
                "family": s.family,
                "variant": s.variant,
                "seed": s.seed,
                "events": len(s.events),
                "expected": len(s.expected),
                "description": s.description,
            }
            f.write(json.dumps(row) + "\n")
    return written
