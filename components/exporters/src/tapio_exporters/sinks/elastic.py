"""Elasticsearch sink: ECS documents through `_bulk`, `_id` = alert id (an update replaces the
document in place), every item's status checked."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

import attrs
import httpx

from tapio_common.model import Alert
from tapio_exporters.encoders.ecs import bulk_body
from tapio_exporters.errors import RejectedError, SinkError
from tapio_exporters.sinks.base import TlsOptions, check_status, http_client, post

_RETRY_ITEM = (429, 500, 502, 503, 504)
_CONFLICT = 409  # a newer state of the alert is stored already (external version): nothing to do


@attrs.frozen
class ElasticSettings:
    url: str  # https://es:9200
    index: str = "tapio-alerts"
    username: str = ""
    password: str = ""
    api_key: str = ""
    timeout: float = 10.0
    tls: TlsOptions = TlsOptions()  # noqa: RUF009 - frozen, safe to share


class ElasticSink:
    kind = "elastic"

    def __init__(self, name: str, settings: ElasticSettings) -> None:
        self.name = name
        self.settings = settings
        self.url = f"{settings.url.rstrip('/')}/_bulk"
        self.headers = {"Content-Type": "application/x-ndjson"}
        if settings.api_key:
            self.headers["Authorization"] = f"ApiKey {settings.api_key}"
        elif settings.username:
            token = base64.b64encode(f"{settings.username}:{settings.password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        s = self.settings
        self.client = http_client(self.name, s.tls, s.timeout, s.url.startswith("https:"))

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def deliver(self, alerts: Sequence[Alert]) -> int:
        """Returns how many documents were stale (409: the index holds a newer external version)."""
        assert self.client is not None, "start() first"
        if not alerts:
            return 0
        body = bulk_body(alerts, self.settings.index)
        resp = await post(self.client, self.name, self.url, content=body, headers=self.headers)
        check_status(self.name, resp, alerts)
        try:
            reply = json.loads(resp.content)
            items = reply["items"]
        except (ValueError, KeyError, TypeError) as e:
            raise SinkError(f"sink {self.name}: _bulk reply without items: {resp.text[:200]}") from e
        if len(items) != len(alerts):
            raise SinkError(
                f"sink {self.name}: _bulk answered {len(items)} items for {len(alerts)} documents"
            )
        retry: list[str] = []
        rejected: list[str] = []
        stale = 0
        reasons: list[str] = []
        for alert, item in zip(alerts, items, strict=True):
            result = next(iter(item.values())) if isinstance(item, dict) and item else {}
            status = int(result.get("status", 0))
            if 200 <= status < 300:
                continue
            if status == _CONFLICT:
                stale += 1
                continue
            reason = str(
                (result.get("error") or {}).get("reason", "")
                if isinstance(result.get("error"), dict)
                else result.get("error")
            )
            if status in _RETRY_ITEM or status == 0:
                retry.append(alert.id)
            else:
                rejected.append(alert.id)
                reasons.append(f"{alert.id}: {status} {reason}"[:200])
        if retry:
            raise SinkError(f"sink {self.name}: {len(retry)} of {len(alerts)} documents to retry (429/5xx)")
        if rejected:
            raise RejectedError(
                f"sink {self.name}: {len(rejected)} documents refused: {reasons[0]}", tuple(rejected)
            )
        return stale
