"""Webhook: the alert document as the JSON body, signed with HMAC-SHA256 over timestamp and body.

The receiver recomputes `hex(HMAC-SHA256(secret, f"{timestamp}.{body}"))`, compares it in constant
time with the `X-Tapio-Signature: sha256=...` header and refuses a `X-Tapio-Timestamp` older than
its tolerance (replay protection)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable

from tapio_common.model import Alert
from tapio_exporters.encoders.document import alert_document

SIGNATURE_HEADER = "X-Tapio-Signature"
TIMESTAMP_HEADER = "X-Tapio-Timestamp"


def webhook_body(alerts: Iterable[Alert]) -> bytes:
    return json.dumps(
        {"version": 1, "alerts": [alert_document(a) for a in alerts]},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def signed_headers(secret: bytes, timestamp: int, body: bytes) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(secret: bytes, headers: dict[str, str], body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: a fresh timestamp and a matching signature."""
    try:
        ts = int(headers.get(TIMESTAMP_HEADER, ""))
    except ValueError:
        return False
    if abs(now - ts) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, ts, body), headers.get(SIGNATURE_HEADER, ""))
