"""The runner's collector thresholds: what exists at start is frozen out of the collector's view
and young collections run every GC_YOUNG allocations (a full collection walks the whole engine)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tapio_correlator.service.memory import GC_OLDEST, GC_YOUNG
from tapio_correlator.service.runner import settle_memory


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restore_gc")
def test_settle_memory_freezes_what_exists_and_raises_the_thresholds() -> None:
    held = [[i] for i in range(1000)]  # tracked containers alive at start (a restored state)
    settle_memory()
    assert gc.get_freeze_count() >= len(held)
    young, _, oldest = gc.get_threshold()
    assert (young, oldest) == (GC_YOUNG, GC_OLDEST)
