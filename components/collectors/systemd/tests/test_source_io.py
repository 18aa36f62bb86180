"""The source's I/O without a systemd: an unreachable bus is one error line and /readyz false while
it retries; the state file survives a crash (atomic write) and a corrupt one is set aside."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import pytest

from tapio_collector import Output
from tapio_collector_systemd.adapters.state_store import StateStore
from tapio_collector_systemd.domain.units import UnitState
from tapio_collector_systemd.settings import SystemdSettings
from tapio_collector_systemd.source import SystemdSource
from tapio_common.metrics import ComponentMetrics

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_unreachable_bus_is_one_error_line_and_not_ready(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = ComponentMetrics("systemd-collector")
    out = Output(metrics, "n1", tmp_path)
    settings = SystemdSettings(
        bus_address=f"unix:path={tmp_path}/no-bus", reconnect_min=0.05, reconnect_max=0.1
    )
    caplog.set_level(logging.DEBUG)
    with anyio.move_on_after(1.5):
        await SystemdSource(settings).run(out)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert (
        errors[0]
        .getMessage()
        .startswith("systemd unreachable over D-Bus, retrying: cannot connect to unix:path=")
    )
    ready, detail = out.readiness()
    assert not ready
    assert "systemd unreachable" in detail
    attempts = metrics.registry.get_sample_value(
        "tapio_systemd_collector_errors_total", {"kind": "bus_connect"}
    )
    assert attempts is not None
    assert attempts >= 5  # it kept retrying


async def test_state_file_round_trip_and_corrupt_file_set_aside(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    assert store.load() == {}
    states = {
        "kubelet.service": UnitState("kubelet.service", "failed", "failed", "exit-code", 1, 1, 4, 99, "ab")
    }
    await store.save(states)
    assert StateStore(tmp_path).load() == states
    assert not (tmp_path / "units.json.tmp").exists()
    store.path.write_text('{"format": 1, "units": {"x": {"bogus": 1}}}')
    assert StateStore(tmp_path).load() == {}
    assert (tmp_path / "units.json.corrupt").exists()
    assert not store.path.exists()
