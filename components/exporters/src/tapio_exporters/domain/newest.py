"""The newest (revision, state) a sink delivered per alert id, so a redelivered older revision is
never delivered after a newer one (fed by the sinks that keep one record per alert: Alertmanager).

Bounded (least recently delivered ids are forgotten first); a sink rebuilds what it forgot or lost
on a restart from the receiver (`learn`: e.g. Alertmanager's active alerts of those ids)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

from tapio_common.model import Alert
from tapio_exporters.domain.lifecycle import order_of


class NewestDelivered:
    def __init__(self, max_ids: int = 100_000) -> None:
        self.max_ids = max_ids
        self._newest: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._newest

    def __len__(self) -> int:
        return len(self._newest)

    def split(self, alerts: Sequence[Alert]) -> tuple[list[Alert], list[Alert]]:
        """(fresh, stale) in order: an alert is stale when a revision at least as new (same or later
        revision; at the same revision the same or a later state) was delivered, or comes earlier
        in this batch. Nothing is remembered before `confirm`."""
        seen: dict[str, tuple[int, int]] = {}
        fresh: list[Alert] = []
        stale: list[Alert] = []
        for alert in alerts:
            order = order_of(alert)
            newest = seen.get(alert.id) or self._newest.get(alert.id)
            if newest is not None and order <= newest:
                stale.append(alert)
                continue
            seen[alert.id] = order
            fresh.append(alert)
        return fresh, stale

    def confirm(self, alerts: Iterable[Alert]) -> None:
        """The receiver confirmed these (fresh) alerts."""
        for alert in alerts:
            self.learn(alert.id, order_of(alert))

    def learn(self, alert_id: str, order: tuple[int, int]) -> None:
        """The receiver holds this (revision, state order) of the alert: kept if newer."""
        current = self._newest.get(alert_id)
        if current is not None and current >= order:
            self._newest.move_to_end(alert_id)
            return
        self._newest[alert_id] = order
        self._newest.move_to_end(alert_id)
        while len(self._newest) > self.max_ids:
            self._newest.popitem(last=False)
