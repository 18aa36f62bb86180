"""The correlator process's garbage-collector settings (`settle_memory`), set by `Runner.run()` after
the engine state is restored (and by bench/correlator_engine.py after its initial list)."""

from __future__ import annotations

import gc

GC_YOUNG = 50_000  # net allocations between two young collections (CPython's default: 700)
GC_OLDEST = 100  # middle collections before a full one is considered (CPython's default: 10)


def settle_memory() -> None:
    """The collector's thresholds for a process holding a large, long-lived engine state.

    With CPython's defaults a profile of the end-to-end benchmark spent more CPU in full collections
    (each walking every object of 100,000 tracked pods, 0.2-0.4 s each, so also the p99 latency) than
    in the engine: the engine makes almost no cyclic garbage (reference counting frees it), so young
    collections run every GC_YOUNG allocations and full ones far less often. What exists now (the
    restored state) moves out of the collector's view (`gc.freeze`); a later snapshot child then also
    shares those pages instead of copying them when a collection would touch them."""
    gc.collect()
    gc.freeze()
    _, middle, _ = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, middle, GC_OLDEST)
