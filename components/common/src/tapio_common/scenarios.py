"""The one loader of scenario folders (`<root>/<name>/events.jsonl`, one canonical proto3-JSON
Event a line, and optionally `expected.jsonl`, one expected correlation a line): the public ones in
tests/scenarios/public and generated ones alike. Used by `tapio-correlator demo`, the tests, the
benchmarks and the scenario generator's checker and scorer (which write folders with EVENTS_FILE
and EXPECTED_FILE); a bad line is a ContractError naming file:line. No other module reads scenario
files (tools/check_layers.py fails when one names them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs
from google.protobuf import json_format

from tapio.events.v1 import events_pb2
from tapio_common.errors import ContractError

PUBLIC = Path("tests") / "scenarios" / "public"
EVENTS_FILE = "events.jsonl"
EXPECTED_FILE = "expected.jsonl"


@attrs.frozen
class Scenario:
    """One scenario folder: its event lines (JSON, as written, empty lines left out), the events
    decoded (this scenario's own messages: a caller may shift their times), what it expects."""

    name: str
    path: Path
    lines: tuple[str, ...]
    events: list[events_pb2.Event]
    expected: tuple[dict[str, Any], ...]

    @property
    def events_file(self) -> Path:
        """The folder's events.jsonl, for a command that takes a file (`tapio-correlator replay --input`)."""
        return self.path / EVENTS_FILE


def public_root() -> Path:
    """tests/scenarios/public: in Bazel runfiles, under `bazel run`, from the working directory,
    or above this file in a checkout. FileNotFoundError if none has it."""
    bases = [
        Path(os.environ.get("TEST_SRCDIR", "")) / os.environ.get("TEST_WORKSPACE", ""),
        Path(os.environ["BUILD_WORKSPACE_DIRECTORY"]) if "BUILD_WORKSPACE_DIRECTORY" in os.environ else None,
        Path.cwd(),
        *Path(__file__).resolve().parents,
    ]
    for base in bases:
        if base is not None and (base / PUBLIC).is_dir():
            return base / PUBLIC
    raise FileNotFoundError(f"{PUBLIC} not found (run from the repository, or add it as Bazel data)")


def parse_event(line: str, path: Path, number: int) -> events_pb2.Event:
    try:
        return json_format.Parse(line, events_pb2.Event())
    except json_format.ParseError as e:
        raise ContractError(f"{path}:{number}: not a valid Event: {str(e).splitlines()[0][:300]}") from e


def load_scenario(folder: Path) -> Scenario:
    events_file = folder / EVENTS_FILE
    try:
        numbered = [
            (n, line)
            for n, line in enumerate(events_file.read_text(encoding="utf-8").splitlines(), 1)
            if line.strip()
        ]
    except OSError as e:
        raise ContractError(f"cannot read {events_file}: {e.strerror}") from e
    events = [parse_event(line, events_file, n) for n, line in numbered]
    expected: list[dict[str, Any]] = []
    expected_file = folder / EXPECTED_FILE
    if expected_file.is_file():
        for n, line in enumerate(expected_file.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ContractError(f"{expected_file}:{n}: not JSON: {e.msg}") from e
                if not isinstance(row, dict):
                    raise ContractError(f"{expected_file}:{n}: expected a JSON object")
                expected.append(row)
    return Scenario(folder.name, folder, tuple(line for _, line in numbered), events, tuple(expected))


def scenario_folders(root: Path | None = None, pattern: str = "*") -> list[Path]:
    """The scenario folders (holding an events.jsonl) under `root` (default: the public ones) whose
    name matches `pattern`, sorted by name; empty when there is none or `root` is no directory.
    For a caller that handles each folder's errors on its own (`load_scenario`)."""
    root = public_root() if root is None else root
    return sorted(d for d in root.glob(pattern) if (d / EVENTS_FILE).is_file()) if root.is_dir() else []


def load_scenarios(root: Path | None = None, pattern: str = "*") -> list[Scenario]:
    """Every scenario folder under `root` (default: the public ones) whose name matches `pattern`,
    sorted by name. ContractError when there is none."""
    root = public_root() if root is None else root
    folders = scenario_folders(root, pattern)
    if not folders:
        raise ContractError(f"no scenarios under {root} (folders with {EVENTS_FILE})")
    return [load_scenario(d) for d in folders]


def event_lines(root: Path | None = None) -> list[str]:
    """The non-empty event lines of every scenario, scenario after scenario."""
    return [line for sc in load_scenarios(root) for line in sc.lines]


def all_events(root: Path | None = None) -> list[events_pb2.Event]:
    """The events of every scenario, decoded, scenario after scenario."""
    return [ev for sc in load_scenarios(root) for ev in sc.events]
