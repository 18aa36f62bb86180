"""Syslog sink: RFC 5424 (or CEF inside RFC 5424) over TCP with octet counting, TLS (RFC 5425) or UDP.

Plain syslog has no acknowledgement, so a TCP/TLS batch is confirmed by the receiver itself: the
sink writes the batch on a fresh connection, closes its sending side, and waits for the receiver to
close too. A receiver closes in order (FIN) only after it read every byte before our end of
stream; one that died with unread data resets the connection instead, and the batch is sent
again. UDP (RFC 5426) has no confirmation at all: a datagram sent counts as delivered.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Sequence

import anyio
import anyio.abc
import attrs
from anyio.streams.tls import TLSStream

from tapio_common.model import Alert
from tapio_exporters.encoders.cef import CefOptions, cef_line
from tapio_exporters.encoders.syslog import SyslogOptions, octet_counted, syslog_message
from tapio_exporters.errors import RejectedError, SinkError
from tapio_exporters.sinks.base import TlsOptions

MAX_UDP = 65_000
TRANSPORTS = ("tcp", "tls", "udp")


@attrs.frozen
class SyslogSettings:
    host: str
    port: int
    transport: str = "tcp"  # tcp | tls | udp
    format: str = "rfc5424"  # rfc5424 | cef
    timeout: float = 10.0
    syslog: SyslogOptions = SyslogOptions()  # noqa: RUF009 - frozen, safe to share
    cef: CefOptions = CefOptions()  # noqa: RUF009 - frozen, safe to share
    tls: TlsOptions = TlsOptions()  # noqa: RUF009 - frozen, safe to share


class SyslogSink:
    def __init__(self, name: str, settings: SyslogSettings) -> None:
        self.name = name
        self.settings = settings
        self.kind = "cef" if settings.format == "cef" else "syslog"
        self._ssl: ssl.SSLContext | None = None
        self._udp: anyio.abc.ConnectedUDPSocket | None = None

    async def start(self) -> None:
        if self.settings.transport == "tls":
            self._ssl = self.settings.tls.context(self.name)

    async def close(self) -> None:
        if self._udp is not None:
            await self._udp.aclose()

    def encode(self, alert: Alert) -> bytes:
        s = self.settings
        if s.format == "cef":
            return syslog_message(alert, s.syslog, msg=cef_line(alert, s.cef), msgid="cef")
        return syslog_message(alert, s.syslog)

    async def deliver(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        messages = [self.encode(a) for a in alerts]
        if self.settings.transport == "udp":
            await self._send_udp(alerts, messages)
            return
        data = b"".join(octet_counted(m) for m in messages)
        try:
            with anyio.fail_after(self.settings.timeout):
                await self._send_stream(data)
        except TimeoutError as e:
            raise SinkError(
                f"sink {self.name}: receiver did not confirm within {self.settings.timeout:.0f}s"
            ) from e

    async def _send_stream(self, data: bytes) -> None:
        s = self.settings
        where = f"{s.host}:{s.port}"
        try:
            tcp = await anyio.connect_tcp(s.host, s.port)
        except OSError as e:
            raise SinkError(f"sink {self.name}: cannot connect to {where}: {e.strerror or e}") from e
        try:
            if self._ssl is not None:
                await self._tls_batch(tcp, data, where)
            else:
                await tcp.send(data)
                await tcp.send_eof()
                await _until_closed(tcp)
        except (OSError, anyio.BrokenResourceError, ssl.SSLError) as e:
            raise SinkError(f"sink {self.name}: {where} broke the connection: {e}") from e
        finally:
            await tcp.aclose()

    async def _tls_batch(self, tcp: anyio.abc.SocketStream, data: bytes, where: str) -> None:
        assert self._ssl is not None
        hostname = self.settings.tls.server_name or self.settings.host
        tls = await TLSStream.wrap(tcp, hostname=hostname, ssl_context=self._ssl, standard_compatible=False)
        await tls.send(data)
        # close_notify, then the receiver's close; one closing without its own close_notify is
        # still checked for an orderly close below
        with contextlib.suppress(anyio.EndOfStream, ssl.SSLEOFError, anyio.BrokenResourceError):
            await tls.unwrap()
        raw = tls.transport_stream
        await raw.send_eof()
        await _until_closed(raw)

    async def _send_udp(self, alerts: Sequence[Alert], messages: list[bytes]) -> None:
        s = self.settings
        too_big = [a.id for a, m in zip(alerts, messages, strict=True) if len(m) > MAX_UDP]
        if self._udp is None:
            try:
                self._udp = await anyio.create_connected_udp_socket(s.host, s.port, family=socket.AF_INET)
            except OSError as e:
                raise SinkError(f"sink {self.name}: cannot reach {s.host}:{s.port}: {e.strerror or e}") from e
        for m in messages:
            if len(m) <= MAX_UDP:
                try:
                    await self._udp.send(m)
                except OSError as e:
                    await self._udp.aclose()
                    self._udp = None
                    raise SinkError(f"sink {self.name}: UDP send failed: {e.strerror or e}") from e
        if too_big:
            raise RejectedError(
                f"sink {self.name}: {len(too_big)} message(s) larger than a UDP datagram", tuple(too_big)
            )


async def _until_closed(stream: anyio.abc.AnyByteReceiveStream) -> None:
    """Reads until the peer closes in order (EndOfStream); a reset raises."""
    while True:
        try:
            await stream.receive()
        except anyio.EndOfStream:
            return
