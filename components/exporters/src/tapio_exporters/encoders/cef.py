"""ArcSight CEF: an alert as one CEF line (header and extension escaped as the format requires)."""

from __future__ import annotations

import attrs

from tapio_common.model import Alert
from tapio_exporters.domain.severity import CEF_SEVERITY

MAX_VENDOR = 63
MAX_PRODUCT = 63
MAX_VERSION = 31
MAX_CLASS_ID = 1023
MAX_NAME = 512


@attrs.frozen
class CefOptions:
    vendor: str = "Tapio"
    product: str = "Tapio"
    version: str = "0.1"


def escape_header(value: str, limit: int) -> str:
    """Header field: `\\` -> `\\\\`, `|` -> `\\|`; newlines become spaces (a header is one line).
    Cut to `limit` characters before escaping, so an escape is never split."""
    flat = value.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")[:limit]
    return flat.replace("\\", "\\\\").replace("|", "\\|")


def escape_extension(value: str) -> str:
    """Extension value: `\\` -> `\\\\`, `=` -> `\\=`, newline -> `\\n`, CR -> `\\r`; pipes and spaces stay."""
    return (
        value.replace("\\", "\\\\")
        .replace("=", "\\=")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )


def cef_extension(alert: Alert) -> list[tuple[str, str]]:
    """The extension pairs, in a fixed order (empty values left out)."""
    labels = alert.labels
    pairs = [
        ("rt", str(alert.time // 1_000_000)),
        ("externalId", alert.id),
        ("act", alert.state.token),
        ("cat", labels.get("type", "")),
        ("msg", alert.description),
        ("dvchost", labels.get("node", "")),
        ("cs1Label", "component"),
        ("cs1", alert.component),
        ("cs2Label", "correlationId"),
        ("cs2", alert.correlation_id),
        ("cs3Label", "namespace"),
        ("cs3", labels.get("namespace", "")),
        ("cs4Label", "runbook"),
        ("cs4", alert.runbook_url),
        ("cs5Label", "confidence"),
        ("cs5", labels.get("confidence", "")),
        ("cn1Label", "revision"),
        ("cn1", str(alert.revision)),
    ]
    out: list[tuple[str, str]] = []
    for i, (key, value) in enumerate(pairs):
        if key.endswith("Label"):
            continue
        if value:
            label = pairs[i - 1] if i and pairs[i - 1][0] == f"{key}Label" else None
            if label is not None:
                out.append(label)
            out.append((key, value))
    return out


def cef_line(alert: Alert, options: CefOptions, extension: list[tuple[str, str]] | None = None) -> str:
    """`CEF:0|vendor|product|version|class id|name|severity|extension` (extension may be empty)."""
    pairs = cef_extension(alert) if extension is None else extension
    header = "|".join(
        (
            "CEF:0",
            escape_header(options.vendor, MAX_VENDOR),
            escape_header(options.product, MAX_PRODUCT),
            escape_header(options.version, MAX_VERSION),
            escape_header(alert.labels.get("type", "alert") or "alert", MAX_CLASS_ID),
            escape_header(alert.title, MAX_NAME),
            str(CEF_SEVERITY[alert.severity]),
        )
    )
    ext = " ".join(f"{k}={escape_extension(v)}" for k, v in pairs)
    return f"{header}|{ext}"
