"""Fixtures of the root tests on the real kernel: a loaded KernelCollector that keeps what it saw."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tapio.events.v1 import events_pb2
from tapio_collector_ebpf.adapters import kernel
from tapio_collector_ebpf.adapters.bcc_session import load_bcc
from tapio_collector_ebpf.collector import KernelCollector
from tapio_collector_ebpf.errors import EbpfError
from tapio_collector_ebpf.settings import EbpfSettings
from tapio_common.metrics import ComponentMetrics
from tapio_testing.component_fixtures import anyio_backend, jetstream, jetstream_engine

Pred = Callable[[events_pb2.Event], bool]


def bpf_unavailable() -> str:
    """Why BPF programs cannot be loaded here ("" when they can)."""
    if os.geteuid() != 0:
        return "loading BPF programs needs root"
    if not Path("/sys/kernel/btf/vmlinux").exists() and not Path("/sys/fs/bpf").exists():
        return "this kernel has no BPF support"
    try:
        kernel.tracefs_root()
        load_bcc()
    except EbpfError as e:
        return str(e)
    return ""


class Watcher:
    """A KernelCollector polled by the test thread; keeps every event seen."""

    def __init__(self, settings: EbpfSettings) -> None:
        self.metrics = ComponentMetrics("ebpf-collector-test")
        self.collector = KernelCollector(settings, node="test-node", metrics=self.metrics)
        self.seen: list[events_pb2.Event] = []

    def poll(self, force_drain: bool = True) -> None:
        self.seen += self.collector.poll(50, force_drain=force_drain).events

    def wait(self, pred: Pred, timeout: float = 10.0, total: int | None = None) -> list[events_pb2.Event]:
        """Events matching `pred`, once at least one (or, with `total`, once their counts add up
        to at least `total`) arrived; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            found = [e for e in self.seen if pred(e)]
            got = sum(e.kernel.count for e in found)
            if found and (total is None or got >= total):
                return found
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no matching event within {timeout}s (counted {got}, want {total or 1}); {len(self.seen)} seen"
                )


@pytest.fixture(scope="session")
def watcher() -> Iterator[Watcher]:
    """The programs loaded once for the session; every connect is a latency sample (threshold 0)."""
    reason = bpf_unavailable()
    if reason:
        pytest.skip(reason)
    w = Watcher(EbpfSettings(interval_ns=200_000_000, latency_threshold_ns=0))
    try:
        yield w
    finally:
        w.collector.close()


@pytest.fixture
def bpf_ready() -> None:
    """Skips (with the reason) where BPF programs cannot be loaded."""
    reason = bpf_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def make_watcher() -> Iterator[Callable[..., Watcher]]:
    """Watchers with settings of the test's own (programs loaded again), closed afterwards."""
    reason = bpf_unavailable()
    if reason:
        pytest.skip(reason)
    made: list[Watcher] = []

    def make(**settings: Any) -> Watcher:
        made.append(Watcher(EbpfSettings(**settings)))
        return made[-1]

    try:
        yield make
    finally:
        for w in made:
            w.collector.close()


# the shared fixtures: anyio on asyncio, `jetstream` on the nats-server binary (the kernel side is tested)
__all__ = ["anyio_backend", "jetstream", "jetstream_engine"]
