"""Correlation models (tapio.correlations.v1): one incident with its root cause and evidence."""

from __future__ import annotations

import enum
from collections.abc import Iterable

import attrs

from tapio_common.model.events import Context, str_tuple


class Confidence(enum.Enum):
    UNSPECIFIED = "CONFIDENCE_UNSPECIFIED"
    HIGH = "CONFIDENCE_HIGH"
    MEDIUM = "CONFIDENCE_MEDIUM"
    LOW = "CONFIDENCE_LOW"

    @classmethod
    def from_score(cls, score: float) -> Confidence:
        """high >= 0.8, medium >= 0.5, low below (CONTRACT.md §2)."""
        if score >= 0.8:
            return cls.HIGH
        return cls.MEDIUM if score >= 0.5 else cls.LOW

    @property
    def token(self) -> str:
        """The subject token: high|medium|low."""
        # `_name_`, not `.name` (an enum property: ~1 us a call, on every alert encoded)
        return "low" if self is Confidence.UNSPECIFIED else self._name_.lower()


@attrs.frozen
class Evidence:
    event_id: str = ""
    relation: str = ""
    weight: float = 0.0


def _evidence(value: Iterable[Evidence]) -> tuple[Evidence, ...]:
    return tuple(value)


@attrs.frozen
class Correlation:
    """An incident. `first_seen`/`last_seen` are Unix nanoseconds; `revision` grows as it is updated."""

    id: str = ""
    type: str = ""
    confidence: Confidence = Confidence.UNSPECIFIED
    score: float = 0.0
    root_cause_event_id: str = ""
    event_ids: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    scope: Context = Context()  # noqa: RUF009 - frozen, safe to share
    summary: str = ""
    evidence: tuple[Evidence, ...] = attrs.field(default=(), converter=_evidence)
    first_seen: int = 0
    last_seen: int = 0
    revision: int = 0
