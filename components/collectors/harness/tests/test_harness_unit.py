"""The harness without servers: --help teaches every flag and variable, readiness follows the source."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness_tail import SPEC  # type: ignore[import-not-found]

from tapio_collector import Output
from tapio_collector.cli import build_parser
from tapio_common.metrics import ComponentMetrics


def test_help_lists_source_and_common_flags_and_the_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser(SPEC).parse_args(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--input", "--nats-url", "--node-name", "--data-dir", "--metrics-port", "--config"):
        assert flag in text
    for var in ("NATS_URL", "NODE_NAME", "TAPIO_DATA_DIR", "TAPIO_METRICS_PORT"):
        assert var in text
    assert "test-collector:" in text  # the YAML section
    assert "tapio-test-tail --input events.jsonl" in text  # the examples


def test_readiness_follows_the_source(tmp_path: Path) -> None:
    out = Output(ComponentMetrics("test-collector"), "node-a", tmp_path)
    assert out.readiness() == (False, "starting")
    out.set_ready(True)
    assert out.readiness() == (True, "ready")
    out.set_ready(False, "API server unreachable")
    assert out.readiness() == (False, "API server unreachable")
    assert not out.ready


def test_confirmations_count_as_published(tmp_path: Path) -> None:
    metrics = ComponentMetrics("test-collector")
    out = Output(metrics, "node-a", tmp_path)
    out.on_confirm(250, 0.004)
    out.on_confirm(3, 0.002)
    assert out.confirmed == 253
    assert b"tapio_test_collector_events_published_total 253.0" in metrics.exposition()
