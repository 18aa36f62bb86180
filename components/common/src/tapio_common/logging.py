"""Structured logging: key=value (human) or JSON lines, one event per line on stderr."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

_RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
FORMATS = ("text", "json")


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")}


def _iso(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, msg and the structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(_fields(record))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger msg key=value ...`, readable in a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_iso(record.created), f"{record.levelname:<7}", record.name, record.getMessage()]
        parts += [f"{k}={_quote(v)}" for k, v in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _quote(value: object) -> str:
    text = str(value)
    return json.dumps(text) if (not text or any(c in text for c in ' "=')) else text


class StructuredLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger taking structured fields as keyword arguments: `log.info("msg", port=4222)`."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        fields = {
            (f"{k}_" if k in _RESERVED else k): kwargs.pop(k)
            for k in list(kwargs)
            if k not in ("exc_info", "stack_info", "extra", "stacklevel")
        }
        extra: Mapping[str, object] = kwargs.get("extra") or {}
        kwargs["extra"] = {**extra, **fields}
        return msg, kwargs


def get_logger(name: str) -> StructuredLogger:
    """The structured logger for a module (`get_logger(__name__)`)."""
    return StructuredLogger(logging.getLogger(name), {})


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    """Send every log record to stderr at `level` in `fmt` (`text` or `json`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # nats-py logs every reconnect attempt at error level; our connection callbacks report them.
    logging.getLogger("nats").setLevel(logging.CRITICAL)
