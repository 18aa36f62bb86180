"""The persisted form of the last published state per unit (JSON text), so a restarted collector
publishes only what changed while it was away. Pure: the state store adapter reads and writes it."""

from __future__ import annotations

import json
from collections.abc import Mapping

import attrs
import cattrs

from tapio_collector_systemd.domain.units import UnitState
from tapio_collector_systemd.errors import SnapshotError

FORMAT = 1
_conv = cattrs.Converter(forbid_extra_keys=True)


def dumps(published: Mapping[str, UnitState]) -> str:
    units = {u: attrs.asdict(s, filter=lambda a, _v: a.name != "unit") for u, s in sorted(published.items())}
    return json.dumps({"format": FORMAT, "units": units}, separators=(",", ":"))


def loads(text: str, where: str) -> dict[str, UnitState]:
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("units"), dict):
            raise SnapshotError(f"{where}: not a systemd collector state file of format {FORMAT}")
        return {u: _conv.structure({"unit": u, **fields}, UnitState) for u, fields in doc["units"].items()}
    except (ValueError, TypeError, cattrs.BaseValidationError) as e:
        raise SnapshotError(f"{where}: unreadable state file ({e})") from e
