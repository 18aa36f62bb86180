"""Alertmanager (`/api/v2/alerts`, resolve sets endsAt) and signed webhook sinks: one JSON POST a batch."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import attrs
import httpx

from tapio_common.model import Alert
from tapio_exporters.encoders.alertmanager import active_filter, am_body, later_revisions, retirements
from tapio_exporters.encoders.webhook import signed_headers, webhook_body
from tapio_exporters.errors import SinkError
from tapio_exporters.sinks.base import TlsOptions, check_status, http_client, post


@attrs.frozen
class AlertmanagerSettings:
    url: str  # http://alertmanager:9093
    generator_url: str = ""
    timeout: float = 10.0
    tls: TlsOptions = TlsOptions()  # noqa: RUF009 - frozen, safe to share


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
    kind = "alertmanager"

    def __init__(self, name: str, settings: AlertmanagerSettings) -> None:
        super().__init__(name, f"{settings.url.rstrip('/')}/api/v2/alerts", settings.timeout, settings.tls)
        self.settings = settings

    async def deliver(self, alerts: Sequence[Alert]) -> None:
        if alerts:
            retired = await self._retired(alerts)
            body = am_body(alerts, self.settings.generator_url, retired)
            await self._post(alerts, body, {"Content-Type": "application/json"})

    async def _retired(self, alerts: Sequence[Alert]) -> list[dict[str, Any]]:
        """The label sets earlier revisions of these alerts left active (see encoders.alertmanager)."""
        ids = later_revisions(alerts)
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
        return retirements(alerts, active, time.time_ns())


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
