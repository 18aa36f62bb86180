"""Reachability of the API server across every reflector: one log line when it goes away, one
when it is back, and the readiness the collector reports (/readyz)."""

from __future__ import annotations

from collections.abc import Callable

from tapio_common.logging import get_logger

log = get_logger(__name__)


class ApiHealth:
    def __init__(
        self,
        on_change: Callable[[bool, str], None],
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.on_change = on_change
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.failing: dict[str, str] = {}
        self.down = False

    def failed(self, what: str, error: str) -> None:
        self.failing[what] = error
        if not self.down:
            self.down = True
            log.warning(
                "API server unreachable: retrying with backoff", error=error, backoff_max=self.backoff_max
            )
            self.on_change(False, f"API server unreachable: {error}")

    def ok(self, what: str) -> None:
        self.failing.pop(what, None)
        if self.down and not self.failing:
            self.down = False
            log.info("API server reachable again")
            self.on_change(True, "watching")
