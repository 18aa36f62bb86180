"""RFC 5424 syslog: an alert as one message (header, structured data, UTF-8 MSG), and the framing of
RFC 6587 octet counting for TCP/TLS. The MSG is the alert's text or, for a CEF sink, its CEF line."""

from __future__ import annotations

import attrs

from tapio_common.model import Alert
from tapio_exporters.domain.severity import SYSLOG_SEVERITY
from tapio_exporters.encoders.document import rfc3339

NILVALUE = "-"
BOM = "\ufeff"
MAX_HOSTNAME = 255
MAX_APP_NAME = 48
MAX_PROCID = 128
MAX_MSGID = 32
MAX_SD_NAME = 32
DOCUMENTATION_PEN = 32473  # RFC 5612's example enterprise number: set your own with `pen`

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "local0": 16, "local1": 17, "local2": 18,
    "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}  # fmt: skip


@attrs.frozen
class SyslogOptions:
    hostname: str = ""
    app_name: str = "tapio"
    procid: str = ""
    facility: int = FACILITIES["local0"]
    pen: int = DOCUMENTATION_PEN


def header_field(value: str, limit: int) -> str:
    """A header field: printable US-ASCII 33-126 only (anything else becomes `_`), at most
    `limit` characters, NILVALUE when empty."""
    clean = "".join(c if 33 <= ord(c) <= 126 else "_" for c in value[:limit])
    return clean or NILVALUE


def sd_name(value: str) -> str:
    """An SD-ID or PARAM-NAME: printable ASCII without `= ] "` or space, at most 32 characters."""
    clean = "".join(c if 33 <= ord(c) <= 126 and c not in '=]"' else "_" for c in value)
    return clean[:MAX_SD_NAME] or "_"


def sd_value(value: str) -> str:
    """A PARAM-VALUE: `"`, `\\` and `]` escaped with a backslash (UTF-8 otherwise kept)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def structured_data(sd_id: str, params: list[tuple[str, str]]) -> str:
    if not params:
        return NILVALUE
    body = " ".join(f'{sd_name(k)}="{sd_value(v)}"' for k, v in params)
    return f"[{sd_name(sd_id)} {body}]"


def priority(alert: Alert, facility: int) -> int:
    return facility * 8 + SYSLOG_SEVERITY[alert.severity]


def alert_params(alert: Alert) -> list[tuple[str, str]]:
    params = [
        ("id", alert.id),
        ("state", alert.state.token),
        ("revision", str(alert.revision)),
        ("severity", alert.severity.token),
        ("component", alert.component),
        ("correlation", alert.correlation_id),
    ]
    if alert.labels.get("namespace"):
        params.append(("namespace", alert.labels["namespace"]))
    return params


def syslog_message(
    alert: Alert, options: SyslogOptions, msg: str | None = None, msgid: str = "alert"
) -> bytes:
    """`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`; MSG defaults to `title: description`
    behind the UTF-8 BOM (pass a CEF line as `msg` to carry CEF, sent without BOM as CEF collectors expect)."""
    head = " ".join(
        (
            f"<{priority(alert, options.facility)}>1",
            rfc3339(alert.time, 6),
            header_field(options.hostname, MAX_HOSTNAME),
            header_field(options.app_name, MAX_APP_NAME),
            header_field(options.procid, MAX_PROCID),
            header_field(msgid, MAX_MSGID),
            structured_data(f"tapio@{options.pen}", alert_params(alert)),
        )
    )
    text = BOM + f"{alert.title}: {alert.description}" if msg is None else msg
    return f"{head} {text}".encode()


def octet_counted(message: bytes) -> bytes:
    """RFC 6587 octet counting: `LEN SP MSG`."""
    return b"%d %s" % (len(message), message)
