"""The metrics endpoint serves the standard component metrics and health over real HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tapio_common.errors import ConfigError
from tapio_common.metrics import ComponentMetrics, Health, MetricsServer


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_standard_metrics_and_health() -> None:
    metrics = ComponentMetrics("k8s-collector")
    ready = {"ok": False}
    health = Health(
        ready_checks={"nats": lambda: (ready["ok"], "connected" if ready["ok"] else "connecting")}
    )
    with MetricsServer(metrics, health, port=0, host="127.0.0.1") as server:
        base = f"http://127.0.0.1:{server.port}"
        metrics.received.inc(3)
        metrics.published.inc(2)
        metrics.drop("too_large")
        metrics.error("nats")
        metrics.processing.observe(0.002)
        status, body = get(base + "/metrics")
        assert status == 200
        assert "tapio_k8s_collector_events_received_total 3.0" in body
        assert "tapio_k8s_collector_events_published_total 2.0" in body
        assert 'tapio_k8s_collector_events_dropped_total{reason="too_large"} 1.0' in body
        assert 'tapio_k8s_collector_errors_total{kind="nats"} 1.0' in body
        assert "tapio_k8s_collector_processing_seconds_count 1.0" in body
        assert get(base + "/healthz") == (200, "ok\n")
        status, body = get(base + "/readyz")
        assert (status, body) == (503, "FAIL nats: connecting\n")
        ready["ok"] = True
        assert get(base + "/readyz") == (200, "ok nats: connected\n")
        assert get(base + "/nope")[0] == 404


def test_port_in_use_is_a_config_error() -> None:
    metrics = ComponentMetrics("x")
    with MetricsServer(metrics, Health(), port=0, host="127.0.0.1") as server:
        message = f"cannot listen for metrics on 127.0.0.1:{server.port}"
        with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
            MetricsServer(metrics, Health(), port=server.port, host="127.0.0.1")
