"""What every sink is, and the TLS and HTTP plumbing the HTTP sinks share."""

from __future__ import annotations

import importlib.util
import ssl
import sys
from collections.abc import Sequence
from typing import Protocol

import attrs
import httpx

from tapio_common.model import Alert
from tapio_exporters.errors import RejectedError, SinkConfigError, SinkError

# httpcore imports sniffio on every request to learn the async library; where sniffio is not
# installed (it is not in our lock) each failed import scans all of sys.path: ~2 ms a request,
# measured with cProfile. A None entry makes the import fail at once (httpcore then says asyncio).
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]


class Sink(Protocol):
    """`deliver` returns once the receiver confirmed every alert of the batch. It raises SinkError
    when it could not (retry later: nothing is acked) and RejectedError naming the alerts the
    receiver refused for good (the others were confirmed). A sink keeping one record per alert
    returns how many alerts it did not deliver because a newer revision of theirs was delivered
    already (stale redeliveries, counted as dropped `stale_revision`); the others return None."""

    name: str
    kind: str

    async def start(self) -> None: ...
    async def deliver(self, alerts: Sequence[Alert]) -> int | None: ...
    async def close(self) -> None: ...


@attrs.frozen
class TlsOptions:
    ca: str = ""  # CA bundle verifying the receiver (default: the system's)
    cert: str = ""  # client certificate (mutual TLS) ...
    key: str = ""  # ... and its key
    insecure: bool = False  # do not verify the receiver (tests only)
    server_name: str = ""  # name to verify instead of the URL's host

    def context(self, sink: str) -> ssl.SSLContext:
        """The client context; SinkConfigError naming the sink and the file that cannot be used."""
        try:
            ctx = ssl.create_default_context(cafile=self.ca or None)
        except (OSError, ssl.SSLError) as e:
            raise SinkConfigError(f"sink {sink}: cannot use CA bundle {self.ca}: {_reason(e)}") from e
        if self.cert or self.key:
            if not (self.cert and self.key):
                raise SinkConfigError(f"sink {sink}: tls cert and key go together: set both")
            try:
                ctx.load_cert_chain(self.cert, self.key)
            except (OSError, ssl.SSLError) as e:
                raise SinkConfigError(
                    f"sink {sink}: cannot use client certificate {self.cert}: {_reason(e)}"
                ) from e
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def _reason(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def http_client(sink: str, tls: TlsOptions, timeout: float, https: bool) -> httpx.AsyncClient:
    verify: ssl.SSLContext | bool = tls.context(sink) if https else True
    return httpx.AsyncClient(verify=verify, timeout=httpx.Timeout(timeout), http2=False)


async def post(client: httpx.AsyncClient, sink: str, url: str, **kw: object) -> httpx.Response:
    """POST; a transport problem (refused, reset, timeout, TLS) is a SinkError (retry later)."""
    try:
        return await client.post(url, **kw)  # type: ignore[arg-type]
    except httpx.HTTPError as e:
        raise SinkError(f"sink {sink}: {url}: {type(e).__name__}: {e}") from e


def check_status(sink: str, resp: httpx.Response, alerts: Sequence[Alert]) -> None:
    """2xx passes; 408, 429, 5xx and 401/403 (a token an operator can fix) are retried;
    other 4xx reject the batch for good."""
    code = resp.status_code
    if 200 <= code < 300:
        return
    detail = resp.text[:200].replace("\n", " ")
    if code in (401, 403, 408, 429) or code >= 500:
        raise SinkError(f"sink {sink}: HTTP {code}: {detail}")
    raise RejectedError(f"sink {sink}: HTTP {code}: {detail}", tuple(a.id for a in alerts))
