"""Splunk HEC sink: batched, gzip, token auth, channel header, indexer acknowledgement polling,
503/busy retried, other 4xx rejected (to the dead-letter subject)."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Sequence

import anyio
import attrs
import httpx

from tapio_common.logging import get_logger
from tapio_common.model import Alert
from tapio_exporters.encoders.hec import HecOptions, hec_event
from tapio_exporters.errors import RejectedError, SinkError
from tapio_exporters.sinks.base import TlsOptions, check_status, http_client, post

log = get_logger(__name__)

BUSY_CODE = 9
INVALID_CHANNEL_CODE = 11


@attrs.frozen
class HecSettings:
    url: str  # https://splunk:8088 (the collector paths are appended)
    token: str
    channel: str = ""  # a GUID; default: a new one per start
    ack: bool = False  # indexer acknowledgement enabled on the token
    gzip: bool = True
    max_batch_bytes: int = 1_000_000
    ack_timeout: float = 60.0  # then the batch is sent again (at least once)
    ack_poll: float = 0.05
    timeout: float = 10.0
    event: HecOptions = HecOptions()  # noqa: RUF009 - frozen, safe to share
    tls: TlsOptions = TlsOptions()  # noqa: RUF009 - frozen, safe to share


class HecSink:
    kind = "hec"

    def __init__(self, name: str, settings: HecSettings) -> None:
        self.name = name
        self.settings = settings
        self.channel = settings.channel or str(uuid.uuid4())
        base = settings.url.rstrip("/")
        self.event_url = f"{base}/services/collector/event"
        self.ack_url = f"{base}/services/collector/ack"
        self.ack_headers = {
            "Authorization": f"Splunk {settings.token}",
            "X-Splunk-Request-Channel": self.channel,
        }
        self.headers = dict(self.ack_headers)
        if settings.gzip:
            self.headers["Content-Encoding"] = "gzip"
        self.client: httpx.AsyncClient | None = None
        # (alert id, revision, state) HEC accepted whose ack is not read yet -> (ack id, when accepted)
        self.accepted: dict[tuple[str, int, str], tuple[int, float]] = {}

    async def start(self) -> None:
        s = self.settings
        self.client = http_client(self.name, s.tls, s.timeout, s.url.startswith("https:"))

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def deliver(self, alerts: Sequence[Alert]) -> None:
        """With acks: an alert HEC accepted before (a delivery that failed later, e.g. HEC went down
        before its ack was read) is not sent again while its ack may still come: its ack id is
        polled first, and it is re-sent only once HEC reports it not indexed after `ack_timeout`.
        Events HEC refused for good in one request do not stop the requests after it: every other
        alert is sent and confirmed, then RejectedError names the refused ones."""
        pending: dict[int, list[Alert]] = {}  # ack id -> its alerts
        since: dict[int, float] = {}  # ack id -> when HEC accepted its batch
        refused: list[RejectedError] = []
        to_send: list[Alert] = []
        for a in alerts:
            accepted = self.accepted.get(_key(a))
            if accepted is None:
                to_send.append(a)
            else:
                pending.setdefault(accepted[0], []).append(a)
                since[accepted[0]] = accepted[1]
        again: list[Alert] = []
        for chunk in self._chunks(to_send):
            try:
                ack_id = await self._send(chunk)
            except RejectedError as e:
                refused.append(e)
                continue
            if ack_id is not None:
                again += pending.pop(ack_id, [])  # its ack id given anew: HEC lost its acks (restarted)
                sent = time.monotonic()
                for a in chunk:
                    self.accepted[_key(a)] = (ack_id, sent)
                pending[ack_id] = chunk
                since[ack_id] = sent
        for a in again:
            self.accepted.pop(_key(a), None)
        if pending:
            await self._wait_acks(pending, since)
        if again:
            raise SinkError(
                f"sink {self.name}: HEC reused the ack id of {len(again)} alert(s): sending again"
            )
        if refused:
            ids = tuple(i for e in refused for i in e.alert_ids)
            raise RejectedError(
                f"{refused[0]}" + (f" (and {len(refused) - 1} more requests)" if len(refused) > 1 else ""),
                ids,
            )

    def _chunks(self, alerts: Sequence[Alert]) -> list[list[Alert]]:
        out: list[list[Alert]] = [[]]
        size = 0
        for a in alerts:
            if out[-1] and size >= self.settings.max_batch_bytes:
                out.append([])
                size = 0
            out[-1].append(a)
            size += 600 + len(a.description) + 40 * len(a.event_ids)
        return [c for c in out if c]

    async def _send(self, chunk: list[Alert]) -> int | None:
        assert self.client is not None, "start() first"
        body = b"\n".join(hec_event(a, self.settings.event) for a in chunk)
        if self.settings.gzip:
            body = gzip.compress(body, compresslevel=1)
        resp = await post(self.client, self.name, self.event_url, content=body, headers=self.headers)
        reply = _json(resp)
        if resp.status_code == 503 or reply.get("code") == BUSY_CODE:
            raise SinkError(f"sink {self.name}: HEC busy (HTTP {resp.status_code}): retry later")
        if resp.status_code == 400 and len(chunk) > 1 and "invalid-event-number" in reply:
            return await self._send_one_by_one(chunk)
        check_status(self.name, resp, chunk)
        if not self.settings.ack:
            return None
        ack_id = reply.get("ackId")
        if not isinstance(ack_id, int):
            raise SinkError(
                f"sink {self.name}: HEC acknowledgement enabled but the reply has no ackId: {resp.text[:200]}"
            )
        return ack_id

    async def _send_one_by_one(self, chunk: list[Alert]) -> int | None:
        """A batch with an invalid event: send each alone, to confirm the good ones and name the bad."""
        rejected: list[str] = []
        for alert in chunk:
            try:
                ack_id = await self._send([alert])
            except RejectedError:
                rejected.append(alert.id)
                continue
            if ack_id is not None:
                sent = time.monotonic()
                self.accepted[_key(alert)] = (ack_id, sent)
                await self._wait_acks({ack_id: [alert]}, {ack_id: sent})
        if rejected:
            raise RejectedError(f"sink {self.name}: HEC refused {len(rejected)} event(s)", tuple(rejected))
        return None

    async def _wait_acks(self, pending: dict[int, list[Alert]], since: dict[int, float]) -> None:
        """Polls until every ack id is indexed (forgotten then). HEC unreachable: SinkError, the ids
        stay pending for the next attempt. Not indexed `ack_timeout` after it was accepted (or HEC no
        longer knows the channel): forgotten, SinkError, the next attempt sends it again."""
        assert self.client is not None
        waiting = set(pending)
        while True:
            try:
                resp = await self.client.post(
                    self.ack_url, json={"acks": sorted(waiting)}, headers=self.ack_headers
                )
            except httpx.HTTPError as e:
                raise SinkError(f"sink {self.name}: acknowledgement query: {type(e).__name__}: {e}") from e
            reply = _json(resp)
            if resp.status_code == 400 and reply.get("code") == INVALID_CHANNEL_CODE:
                self._forget(pending, waiting)
                raise SinkError(
                    f"sink {self.name}: HEC no longer knows channel {self.channel}: sending again"
                )
            if resp.status_code == 200:
                acks = reply.get("acks", {})
                if isinstance(acks, dict):
                    done = {int(k) for k, v in acks.items() if v is True} & waiting
                    self._forget(pending, done)
                    waiting -= done
            elif resp.status_code != 503:
                raise SinkError(
                    f"sink {self.name}: acknowledgement query answered HTTP {resp.status_code}: {resp.text[:200]}"
                )
            if not waiting:
                return
            now = time.monotonic()
            expired = {i for i in waiting if since[i] + self.settings.ack_timeout < now}
            if expired:
                self._forget(pending, expired)
                raise SinkError(
                    f"sink {self.name}: {len(expired)} batch(es) not acknowledged within "
                    f"{self.settings.ack_timeout:.0f}s: sending them again"
                )
            await anyio.sleep(self.settings.ack_poll)

    def _forget(self, pending: dict[int, list[Alert]], ack_ids: set[int]) -> None:
        for ack_id in ack_ids:
            for a in pending[ack_id]:
                self.accepted.pop(_key(a), None)


def _key(alert: Alert) -> tuple[str, int, str]:
    return alert.id, alert.revision, alert.state.value


def _json(resp: httpx.Response) -> dict[str, object]:
    try:
        doc = json.loads(resp.content or b"{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}
