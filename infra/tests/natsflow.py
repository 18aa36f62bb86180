"""Refusals on the local cluster: waiting for the server's permission violations (the connection and
the manifests' JetStream resources are tapio_testing.natsprovision)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import nats.errors
import pytest


async def eventually(condition: Callable[[], bool], what: str, within: float = 5.0) -> None:
    """Polls an outside condition (client errors, server log) until it holds."""
    for _ in range(int(within / 0.05)):
        if condition():
            return
        await anyio.sleep(0.05)
    raise AssertionError(f"not within {within:.0f}s: {what}")


async def violation(errors: list[str], action: str, subject: str) -> None:
    """Waits until the server reports a permissions violation (nats-py lower-cases its text)."""
    expected = f'permissions violation for {action} to "{subject.lower()}"'
    await eventually(lambda: any(expected in e.lower() for e in errors), f"{expected} (got {errors})")


async def expect_denied(errors: list[str], subject: str, call: Awaitable[Any]) -> None:
    """The server refuses to route `subject`: the request gets no answer, the client a violation."""
    errors.clear()
    with pytest.raises(nats.errors.TimeoutError):
        await call
    await violation(errors, "publish", subject)
