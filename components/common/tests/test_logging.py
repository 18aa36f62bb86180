"""Structured logging: fields as keyword arguments, text and JSON formats."""

from __future__ import annotations

import json
import logging

import pytest

from tapio_common.logging import JsonFormatter, TextFormatter, get_logger


def test_structured_fields_never_clash_with_log_record_attributes(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO"):
        get_logger("tapio.test").info("server started", name="n1", port=4222)
    record = caplog.records[-1]
    assert record.getMessage() == "server started"
    assert vars(record)["name_"] == "n1"
    assert vars(record)["port"] == 4222


def test_formats_carry_the_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "tapio.x", "levelname": "INFO", "msg": "nats connected", "url": "nats://a:4222"}
    )
    doc = json.loads(JsonFormatter().format(record))
    assert doc["msg"] == "nats connected"
    assert doc["url"] == "nats://a:4222"
    assert doc["level"] == "info"
    line = TextFormatter().format(record)
    assert "nats connected url=nats://a:4222" in line
    record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "m", "detail": "two words"})
    assert 'detail="two words"' in TextFormatter().format(record)
