"""The NATS client every Tapio connection uses (`tapio_common.nats.connect.connect` makes it).

nats-py's `Client` with one hot path made cheaper: the header block of an ordinary message. Every
JetStream delivery carries one (`Nats-Msg-Id`, `Tapio-Encoding`, `Tapio-Compression`, ...), and
nats-py 2.16 checks each header name character by character for whitespace in a generator
(`Client._parse_header_lines`): ~6 us a message, paid by the correlator, pipeline and exporter for
every message they consume. Here the names are looked up in a small table of names already seen
(a handful per installation), so only the values are decoded per message.

The result is exactly nats-py's (the same dict for every header block; status messages such as
`NATS/1.0 408 Request Timeout`, `404`, `409` and `100` idle heartbeats are still parsed by nats-py
itself): `components/common/tests/test_nats_client.py` pins that against the installed nats-py, so
an upgrade that changes its parsing fails there instead of changing what consumers see.
"""

from __future__ import annotations

from nats.aio.client import Client

HEADER_LINE = b"NATS/1.0"  # what every header block starts with
_BODY = len(HEADER_LINE) + 2  # the first header line starts after "NATS/1.0\r\n"
_SPACE = 32  # "NATS/1.0 408 ...": an inline status (left to nats-py)
MAX_NAMES = 1024  # header names remembered (an installation uses a handful)

_UNSEEN = "\0unseen"  # a marker, compared by identity (a name decoding to it is only never cached)
_NAMES: dict[bytes, str | None] = {}  # raw name -> its key, None for a name nats-py skips


def header_key(name: bytes) -> str | None:
    """The dict key nats-py gives a raw header name (stripped ASCII), or None when it skips the
    line (a non-ASCII name, or whitespace inside it)."""
    try:
        key = name.strip().decode("ascii")
    except UnicodeDecodeError:
        return None
    if key and key.split() != [key]:
        return None  # whitespace inside the name (str.split splits where str.isspace holds)
    return key


def parse_header_lines(raw: bytes) -> dict[str, str]:
    """`Name: Value` lines separated by CRLF -> {name: value} (the last of a repeated name wins),
    the same as nats-py's `Client._parse_header_lines`."""
    out: dict[str, str] = {}
    names = _NAMES
    for line in raw.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if not sep:
            continue  # an empty line (the block's end) or no colon
        key = names.get(name, _UNSEEN)
        if key is _UNSEEN:
            key = header_key(name)
            if len(names) < MAX_NAMES:
                names[name] = key
        if key is not None:
            out[key] = value.strip().decode("utf-8", "replace")
    return out


class TapioClient(Client):
    """nats-py's Client with the cheaper header parse for ordinary (non-status) messages."""

    async def _process_headers(self, headers: bytes | None) -> dict[str, str] | None:
        if not headers or len(headers) <= _BODY or headers[len(HEADER_LINE)] == _SPACE:
            result: dict[str, str] | None = await super()._process_headers(headers)
            return result  # empty, a bare "NATS/1.0\r\n", or a status message: nats-py's own parse
        return parse_header_lines(headers[_BODY:]) or None  # nats-py: no header is None, not {}
