"""`e2e-report.json`: one entry per scenario of the e2e suite, written at the end of the session.

Fed by each scenario through the `e2e_report` fixture (conftest.py): it counts what it published and
what arrived, records an `Entry`, then asserts `entry.problems()` is empty, so a count that is off
fails the suite and still shows in the report."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import attrs

REPORT = Path(__file__).resolve().parents[3] / "e2e-report.json"


@attrs.frozen(kw_only=True)
class Entry:
    """What one scenario published and what came out of the product.

    `published`: good messages the scenario put on the wire; `delivered`: the distinct results it
    expected that arrived (at the receiver, or in the DLQ for bad input); `lost`: expected results
    that never arrived; `duplicates`: results that arrived more than once; `dlq`: messages in
    `tapio.dlq.*`; `recovery_seconds`: from a restart to caught up (None: no fault)."""

    scenario: str
    published: int
    delivered: int
    lost: int
    duplicates: int
    dlq: int
    recovery_seconds: float | None = None
    expected_dlq: int = 0
    detail: dict[str, Any] = attrs.field(factory=dict)

    def problems(self) -> list[str]:
        out = []
        if self.lost:
            out.append(f"{self.lost} lost")
        if self.duplicates:
            out.append(f"{self.duplicates} duplicated")
        if self.dlq != self.expected_dlq:
            out.append(f"{self.dlq} in the DLQ, expected {self.expected_dlq}")
        if self.delivered == 0:
            out.append("nothing delivered")
        return out

    def to_json(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "ok": not self.problems(), "problems": self.problems()}


@attrs.define
class Report:
    entries: list[Entry] = attrs.field(factory=list)
    started: float = attrs.field(factory=time.time)

    def add(self, entry: Entry) -> Entry:
        self.entries.append(entry)
        return entry

    def write(self, path: Path = REPORT) -> None:
        doc = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "seconds": round(time.time() - self.started, 1),
            "ok": all(not e.problems() for e in self.entries),
            "scenarios": [e.to_json() for e in self.entries],
        }
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
