"""Alertmanager (`/api/v2/alerts`, resolve sets endsAt) and signed webhook sinks: one JSON POST a batch."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import attrs
import httpx

from tapio_common.model import Alert
from tapio_exporters.domain.newest import NewestDelivered
from tapio_exporters.encoders.alertmanager import (
    active_filter,
    am_body,
    held_revisions,
    retirements,
    to_look_up,
)
from tapio_exporters.encoders.webhook import signed_headers, webhook_body
from tapio_exporters.errors import SinkError
from tapio_exporters.sinks.base import TlsOptions, check_status, http_client, post


@attrs.frozen
class AlertmanagerSettings:
    url: str  # http://alertmanager:9093
    generator_url: str = ""
    timeout: float = 10.0
    tls: TlsOptions = TlsOptions()  # noqa: RUF009 - frozen, safe to share
    remember: int = 100_000  # alert ids whose newest delivered revision is kept


@attrs.frozen
class WebhookSettings:
    url: str
    secret: bytes = b""
    timeout: float = 10.0
    tls: TlsOptions = TlsOptions()  # noqa: RUF009 - frozen, safe to share


class _JsonPost:
    kind = ""

    def __init__(self, name: str, url: str, timeout: float, tls: TlsOptions) -> None:
        self.name = name
        self.url = url
        self._timeout = timeout
        self._tls = tls
        self.client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self.client = http_client(self.name, self._tls, self._timeout, self.url.startswith("https:"))

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def _post(self, alerts: Sequence[Alert], body: bytes, headers: dict[str, str]) -> None:
        assert self.client is not None, "start() first"
        resp = await post(self.client, self.name, self.url, content=body, headers=headers)
        check_status(self.name, resp, alerts)


class AlertmanagerSink(_JsonPost):
    """Alertmanager keeps the last post of an alert: a redelivered older revision posted after a
    newer one would re-activate the alert at the older revision. So the sink keeps the newest
    revision it delivered per alert id (`NewestDelivered`; rebuilt from Alertmanager's active alerts
    of the ids it does not know) and drops (`deliver` returns how many) what is not newer."""

    kind = "alertmanager"

    def __init__(self, name: str, settings: AlertmanagerSettings) -> None:
        super().__init__(name, f"{settings.url.rstrip('/')}/api/v2/alerts", settings.timeout, settings.tls)
        self.settings = settings
        self.newest = NewestDelivered(settings.remember)

    async def deliver(self, alerts: Sequence[Alert]) -> int:
        if not alerts:
            return 0
        active = await self._active(alerts)
        for alert_id, order in held_revisions(active):
            self.newest.learn(alert_id, order)
        fresh, stale = self.newest.split(alerts)
        if fresh:
            now = time.time_ns()  # our clock: an event time ahead of it is clamped (see encoders)
            retired = retirements(fresh, active, now)
            body = am_body(fresh, self.settings.generator_url, retired, now)
            await self._post(fresh, body, {"Content-Type": "application/json"})
            self.newest.confirm(fresh)
        return len(stale)

    async def _active(self, alerts: Sequence[Alert]) -> list[dict[str, Any]]:
        """Alertmanager's active alerts of the ids to look up (see encoders.alertmanager)."""
        ids = to_look_up(alerts, self.newest)
        if not ids:
            return []
        assert self.client is not None, "start() first"
        try:
            resp = await self.client.get(self.url, params={"filter": active_filter(ids), "active": "true",
                                                           "silenced": "true", "inhibited": "true"})  # fmt: skip
        except httpx.HTTPError as e:
            raise SinkError(f"sink {self.name}: {self.url}: {type(e).__name__}: {e}") from e
        check_status(self.name, resp, alerts)
        active: list[dict[str, Any]] = resp.json()
        return active


class WebhookSink(_JsonPost):
    kind = "webhook"

    def __init__(self, name: str, settings: WebhookSettings) -> None:
        super().__init__(name, settings.url, settings.timeout, settings.tls)
        self.settings = settings

    async def deliver(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        body = webhook_body(alerts)
        headers = {"Content-Type": "application/json"}
        if self.settings.secret:
            headers.update(signed_headers(self.settings.secret, int(time.time()), body))
        await self._post(alerts, body, headers)
