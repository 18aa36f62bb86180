"""Transition detection: what systemd reported (listings, PropertiesChanged) against what was last
published per unit, so each unit state change becomes exactly one Transition.

Fed by the source with decoded D-Bus data; the published states come from (and go to) the state
store, so a restarted collector neither repeats nor misses a change.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from tapio_collector_systemd.domain.units import STATE_PROPERTIES, UnitState

INACTIVE = ("inactive", "dead")
"""The state of a unit systemd has not loaded (never started, or garbage-collected when stopped)."""


class Seen(enum.Enum):
    """How the transition was observed."""

    INITIAL = "initial"  # first sight of the unit: its current state, published once
    SIGNAL = "signal"  # a PropertiesChanged signal
    RELIST = "relist"  # a listing after (re)connecting found a state different from the last published


@attrs.frozen
class Transition:
    """One unit state change: from the last published state (`before`, None at first sight) to `after`."""

    before: UnitState | None
    after: UnitState
    seen: Seen

    @property
    def unit(self) -> str:
        return self.after.unit

    @property
    def previous_state(self) -> str:
        return self.before.active_state if self.before is not None else ""


def changed(before: UnitState, after: UnitState) -> bool:
    """Whether `after` is a new state of the unit: another (ActiveState, SubState), or the same pair
    reached again through a restart or a new run systemd folded into one signal. (An inactive unit
    gets its new InvocationID when its start job is queued, before it changes state: no transition.)"""
    new_run = (
        bool(before.invocation_id)
        and bool(after.invocation_id)
        and before.invocation_id != after.invocation_id
    )
    return (
        before.state != after.state
        or before.restarts != after.restarts
        or (new_run and after.active_state != "inactive")
    )


class Tracker:
    """Per-unit latest properties and last published state. Not thread-safe (one event loop)."""

    def __init__(self, published: Mapping[str, UnitState] | None = None) -> None:
        self._live: dict[str, UnitState] = {}
        self._published: dict[str, UnitState] = dict(published or {})
        self.dirty = False  # published states changed since the last `take_dirty`

    @property
    def published(self) -> Mapping[str, UnitState]:
        return self._published

    def known(self) -> Iterable[str]:
        """Units with a published state (those a relist must account for, loaded or not)."""
        return self._published.keys()

    def properties_changed(self, unit: str, props: Mapping[str, Any]) -> Transition | None:
        """A PropertiesChanged body of one of the unit's interfaces. systemd sends the type
        interface (Service: Result, ExecMain*, NRestarts) first, then the Unit interface
        (ActiveState, SubState): the second completes the picture and may be a transition."""
        live = (self._live.get(unit) or self._published.get(unit) or UnitState(unit, *INACTIVE)).updated(
            props
        )
        self._live[unit] = live
        if STATE_PROPERTIES.isdisjoint(props):
            return None
        # A unit never published was not loaded until now (or not followed): it was inactive.
        before = self._published.get(unit) or UnitState(unit, *INACTIVE)
        if not changed(before, live):
            return None
        return self._publish(Transition(before, live, Seen.SIGNAL))

    def listed(self, states: Iterable[UnitState]) -> list[Transition]:
        """A listing after (re)connecting: one Transition per unit whose state differs from the
        last published one, and an INITIAL one per unit never published."""
        out: list[Transition] = []
        for state in states:
            self._live[state.unit] = state
            before = self._published.get(state.unit)
            if before is None:
                out.append(self._publish(Transition(None, state, Seen.INITIAL)))
            elif changed(before, state):
                out.append(self._publish(Transition(before, state, Seen.RELIST)))
        return out

    def new_session(self) -> None:
        """A new bus connection (or a new systemd): live properties are re-read by a listing."""
        self._live.clear()

    def unit_removed(self, unit: str) -> None:
        """systemd unloaded the unit (UnitRemoved): forget its live properties; its last published
        state stays, so loading it again in the same state is no transition."""
        self._live.pop(unit, None)

    def forget(self, unit: str) -> None:
        """Drop a unit that no longer matches the filter."""
        self._live.pop(unit, None)
        if self._published.pop(unit, None) is not None:
            self.dirty = True

    def _publish(self, t: Transition) -> Transition:
        self._published[t.unit] = t.after
        self.dirty = True
        return t
