"""Splunk HTTP Event Collector: an alert as one HEC event object; a batch as objects concatenated."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from tapio_common.model import Alert
from tapio_exporters.encoders.document import alert_document, epoch_seconds_text, json_bytes


@attrs.frozen
class HecOptions:
    host: str = ""
    source: str = "tapio"
    sourcetype: str = "_json"
    index: str = ""


def hec_fields(alert: Alert, doc: dict[str, object] | None = None) -> dict[str, str]:
    """Indexed fields (a flat map of strings): what a search filters on without parsing JSON
    (`doc`: the alert's `alert_document`, whose tokens are taken instead of made again)."""
    return {
        "alert_id": alert.id,
        "state": str(doc["state"]) if doc else alert.state.token,
        "revision": str(alert.revision),
        "severity": str(doc["severity"]) if doc else alert.severity.token,
        "component": alert.component,
        "correlation_id": alert.correlation_id,
    }


def hec_event(alert: Alert, options: HecOptions) -> bytes:
    """One HEC event object: `time` as epoch seconds with milliseconds, the alert under `event`."""
    meta: dict[str, object] = {}
    if options.host:
        meta["host"] = options.host
    if options.source:
        meta["source"] = options.source
    if options.sourcetype:
        meta["sourcetype"] = options.sourcetype
    if options.index:
        meta["index"] = options.index
    meta["event"] = doc = alert_document(alert)
    meta["fields"] = hec_fields(alert, doc)
    return b'{"time":' + epoch_seconds_text(alert.time).encode() + b"," + json_bytes(meta)[1:]


def hec_batch(alerts: Iterable[Alert], options: HecOptions) -> bytes:
    """The request body: event objects one after the other (not an array), newline-separated."""
    return b"\n".join(hec_event(a, options) for a in alerts)
