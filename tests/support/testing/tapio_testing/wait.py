"""Waiting in tests for state that has no event to wait on (stream contents, consumer counters)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

import anyio


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], what: str, within: float = 20.0
) -> None:
    """Polls `condition` (plain or async) every 50 ms; AssertionError naming `what` after `within` s."""
    for _ in range(max(1, int(within / 0.05))):
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await anyio.sleep(0.05)
    raise AssertionError(f"{what}: not reached within {within:g} s")
