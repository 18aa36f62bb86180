"""Console sink: prints each alert as it fires, updates and resolves (one line, or JSON)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TextIO

from tapio_common.model import Alert
from tapio_exporters.encoders.console import console_line
from tapio_exporters.encoders.document import alert_document


class ConsoleSink:
    kind = "console"

    def __init__(self, name: str, as_json: bool = False, out: TextIO | None = None) -> None:
        self.name = name
        self.as_json = as_json
        self.out = out or sys.stdout

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.out.flush()

    async def deliver(self, alerts: Sequence[Alert]) -> None:
        if self.as_json:
            text = "".join(json.dumps(alert_document(a), ensure_ascii=False) + "\n" for a in alerts)
        else:
            text = "".join(console_line(a) + "\n" for a in alerts)
        self.out.write(text)
        self.out.flush()
