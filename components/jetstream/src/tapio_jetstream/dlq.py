"""Dead letters (CONTRACT.md §3): what a consumer publishes after a message's last delivery failed."""

from __future__ import annotations

from collections.abc import Mapping

from tapio_publisher import Publisher, Receipt
from tapio_publisher.codec import MSG_ID_HEADER
from tapio_publisher.subjects import dlq_subject

ERROR_HEADER = "Tapio-Error"
STREAM_SEQ_HEADER = "Tapio-Stream-Seq"
STREAM_HEADER = "Tapio-Stream"
MAX_ERROR_CHARS = 1024


async def publish_dead_letter(
    pub: Publisher,
    component: str,
    data: bytes,
    *,
    error: str,
    stream: str,
    stream_seq: int,
    headers: Mapping[str, str] | None = None,
) -> Receipt:
    """Publishes the failed message (its payload and headers) to `<prefix>.dlq.{component}` (the
    publisher's installation prefix, e.g. `tapio.dlq.pipeline`) with
    `Tapio-Error` (one line), `Tapio-Stream-Seq` and `Tapio-Stream`. The message id is derived from
    stream and sequence, so a consumer that crashes before its AckTerm and retries publishes it once.
    Await the receipt, then terminate the original (AckTerm)."""
    hdrs = {k: v for k, v in (headers or {}).items() if k != MSG_ID_HEADER}
    hdrs[ERROR_HEADER] = " ".join(error.split())[:MAX_ERROR_CHARS] or "unknown error"
    hdrs[STREAM_SEQ_HEADER] = str(stream_seq)
    hdrs[STREAM_HEADER] = stream
    msg_id = f"dlq:{component}:{stream}:{stream_seq}"
    return await pub.publish_message(
        dlq_subject(component, pub.subjects.prefix), data, msg_id=msg_id, headers=hdrs
    )
