"""Plain-text tables of an apply report and of the streams' status."""

from __future__ import annotations

from collections.abc import Sequence

from tapio_jetstream.layout import ApplyReport
from tapio_jetstream.streams import StreamStatus


def table(rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell; columns in `right` are right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def render_report(report: ApplyReport) -> str:
    rows = [["KIND", "NAME", "ACTION", "CHANGES"]]
    for c in report.changes:
        action = f"would {c.action}" if report.dry_run and c.action in ("create", "update") else c.action
        rows.append([c.kind, c.name, action, "; ".join(c.changes)])
    return table(rows) + "\n" + report.summary()


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def render_status(streams: Sequence[StreamStatus]) -> str:
    rows = [
        ["STREAM", "MESSAGES", "BYTES", "STORAGE", "R", "CONSUMER", "PENDING", "ACK PENDING", "REDELIVERED"]
    ]
    for s in streams:
        if not s.exists:
            rows.append(
                [s.name, "-", "-", "-", "-", "(missing: run `tapio-admin streams apply`)", "", "", ""]
            )
            continue
        head = [s.name, str(s.messages), human_bytes(s.bytes), s.storage, str(s.replicas)]
        if not s.consumers:
            rows.append([*head, "-", "", "", ""])
        for i, c in enumerate(s.consumers):
            cells = head if i == 0 else ["", "", "", "", ""]
            rows.append([*cells, c.name, str(c.pending), str(c.ack_pending), str(c.redelivered)])
    return table(rows, right=(1, 2, 4, 6, 7, 8))
