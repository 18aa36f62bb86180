"""The alert lifecycle: correlation revisions in, Alerts out (firing, updated, resolved), on event time.

Fed by the exporter's correlation consumer; restored at start from the alerts it published before
(`restore`). Pure: the caller passes time in (`advance`), nothing here reads a clock.

- the first revision of an incident fires its alert; a later revision updates it (same id, the
  revision carried); a revision at or below the one already reflected changes nothing (a redelivery);
- an incident ends when no new member joined within its window: the watermark (the latest event
  time seen, `last_seen` of the correlations, or what the caller advances it to when the input is
  quiet) passing `last_seen + window` resolves the alert with `ends_at = last_seen + window`;
- a revision of a resolved incident fires its alert again (same id, higher revision).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

import attrs

from tapio_common.model import Alert, AlertState, Correlation
from tapio_exporters.domain.alerts import AlertTemplate, alert_id, build_alert, resolved

MINUTE = 60 * 1_000_000_000

# When an incident of each type counts as over: no new member for this long (the correlator's
# windows of the same type, so a revision the engine can still emit lands before the resolve).
DEFAULT_WINDOWS_NS: dict[str, int] = {
    "cascading_failure": 5 * MINUTE,
    "node_failure": 5 * MINUTE,
    "crash_loop": 10 * MINUTE,
    "resource_pressure": 10 * MINUTE,
    "network_degradation": 2 * MINUTE,
    "performance_degradation": 5 * MINUTE,
    "deployment_failure": 10 * MINUTE,
    "service_dependency_failure": 5 * MINUTE,
    "potential_issue": 10 * MINUTE,
}
DEFAULT_WINDOW_NS = 10 * MINUTE


@attrs.frozen
class LifecycleSettings:
    """`windows_ns` overrides the default window of a type; `default_window_ns` is for the rest.
    Resolved alerts are remembered `retain_ns` of event time after their end (to recognise a stale
    redelivery), then forgotten."""

    windows_ns: Mapping[str, int] = attrs.field(factory=lambda: dict(DEFAULT_WINDOWS_NS))
    default_window_ns: int = DEFAULT_WINDOW_NS
    retain_ns: int = 60 * MINUTE
    template: AlertTemplate = AlertTemplate()  # noqa: RUF009 - frozen, safe to share

    def window(self, correlation_type: str) -> int:
        return self.windows_ns.get(correlation_type, self.default_window_ns)

    @property
    def max_window_ns(self) -> int:
        return max([self.default_window_ns, *self.windows_ns.values()])


@attrs.define
class _Entry:
    alert: Alert  # the last alert emitted for this incident
    deadline: int  # event time at which it resolves (open) or is forgotten (resolved)


class Lifecycle:
    """Open and recently resolved alerts by id, with a heap of their deadlines (lazily pruned)."""

    def __init__(self, settings: LifecycleSettings | None = None) -> None:
        self.settings = settings or LifecycleSettings()
        self.watermark = 0
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[int, str]] = []

    # --- queries ------------------------------------------------------------------------------

    @property
    def open_count(self) -> int:
        return sum(1 for e in self._entries.values() if e.alert.state is not AlertState.RESOLVED)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, aid: str) -> Alert | None:
        entry = self._entries.get(aid)
        return entry.alert if entry is not None else None

    # --- input --------------------------------------------------------------------------------

    def on_correlation(self, corr: Correlation) -> list[Alert]:
        """Alerts for one correlation revision: its own (fire or update; none for a stale
        revision), after the resolves its event time makes due."""
        out = self.advance(corr.last_seen)
        aid = alert_id(corr.id)
        entry = self._entries.get(aid)
        if entry is not None and corr.revision <= entry.alert.revision:
            return out
        if entry is None or entry.alert.state is AlertState.RESOLVED:
            state = AlertState.FIRING
        else:
            state = AlertState.UPDATED
        alert = build_alert(corr, state, self.settings.template, aid)
        self._remember(alert, corr.last_seen + self.settings.window(corr.type))
        out.append(alert)
        if self.watermark >= self._entries[aid].deadline:  # arrived after its own window passed
            out.extend(self.advance(self.watermark))
        return out

    def on_alert(self, alert: Alert) -> list[Alert]:
        """A one-shot alert (an event's, `event_alerts`): fires once, resolves when the window of its
        type has passed; an id already known (open, or resolved and still remembered) changes nothing."""
        out = self.advance(alert.time)
        if alert.id in self._entries:
            return out
        deadline = alert.time + self.settings.window(alert.labels.get("type", ""))
        self._remember(alert, deadline)
        out.append(alert)
        if self.watermark >= deadline:  # arrived after its own window passed
            out.extend(self.advance(self.watermark))
        return out

    def advance(self, watermark: int) -> list[Alert]:
        """Moves event time to `watermark` (never back): resolves what is due, forgets what is old."""
        if watermark > self.watermark:
            self.watermark = watermark
        out: list[Alert] = []
        heap = self._heap
        while heap and heap[0][0] <= self.watermark:
            deadline, aid = heapq.heappop(heap)
            entry = self._entries.get(aid)
            if entry is None or entry.deadline != deadline:
                continue  # superseded by a later revision
            if entry.alert.state is AlertState.RESOLVED:
                del self._entries[aid]
                continue
            done = resolved(entry.alert, deadline)
            self._remember(done, deadline + self.settings.retain_ns)
            out.append(done)
        return out

    def restore(self, alert: Alert) -> None:
        """Takes back an alert published before a restart (in stream order); the watermark
        follows the alerts' times, so what was due is resolved by the next `advance`."""
        entry = self._entries.get(alert.id)
        if entry is not None and _order(alert) <= _order(entry.alert):
            return
        if alert.state is AlertState.RESOLVED:
            deadline = alert.ends_at + self.settings.retain_ns
        else:
            deadline = alert.time + self.settings.window(alert.labels.get("type", ""))
        self._remember(alert, deadline)
        self.watermark = max(self.watermark, alert.time)

    def _remember(self, alert: Alert, deadline: int) -> None:
        self._entries[alert.id] = _Entry(alert, deadline)
        heapq.heappush(self._heap, (deadline, alert.id))
        if len(self._heap) > 4 * len(self._entries) + 1024:  # drop superseded heap items
            self._heap = [(e.deadline, k) for k, e in self._entries.items()]
            heapq.heapify(self._heap)


_STATE_ORDER = {
    AlertState.UNSPECIFIED: 0,
    AlertState.FIRING: 1,
    AlertState.UPDATED: 2,
    AlertState.RESOLVED: 3,
}


def order_of(alert: Alert) -> tuple[int, int]:
    """Where an alert stands in its lifecycle: (revision, state order); later compares greater."""
    return alert.revision, _STATE_ORDER[alert.state]


def order_of_tokens(revision: str, state: str) -> tuple[int, int] | None:
    """The same from a receiver's text (`"3"`, `"updated"`); None when it is not one of ours."""
    order = {s.token: n for s, n in _STATE_ORDER.items()}.get(state)
    if order is None or not revision.isdigit():
        return None
    return int(revision), order


_order = order_of


def version_of(alert: Alert) -> int:
    """A number that grows along an alert's lifecycle (revision, then state): sinks that keep one
    document per alert use it so a stale redelivery never overwrites a newer state."""
    rev, state = _order(alert)
    return rev * 4 + state
