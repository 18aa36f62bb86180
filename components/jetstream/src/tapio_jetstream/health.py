"""Event-loop liveness for /healthz: a task ticks in the loop, the HTTP thread reads when it last did.

A loop blocked (a long synchronous call, a CPU-bound handler) stops the ticks; after
`threshold` seconds /healthz answers 503 with how long. `tapio_<component>_event_loop_lag_seconds`
is the latest tick's delay beyond its interval.
"""

from __future__ import annotations

import time

import anyio

from tapio_common.metrics import ComponentMetrics
from tapio_jetstream.gauges import gauge


class LoopMonitor:
    def __init__(self, metrics: ComponentMetrics, threshold: float = 10.0, interval: float = 0.25) -> None:
        self.threshold = threshold
        self.interval = interval
        self.last_tick = time.monotonic()
        self.lag = 0.0
        self._gauge = gauge(
            metrics, "event_loop_lag_seconds", "Delay of the latest event-loop tick beyond its interval."
        )

    async def run(self) -> None:
        """Ticks until cancelled."""
        while True:
            before = time.monotonic()
            await anyio.sleep(self.interval)
            now = time.monotonic()
            self.lag = max(0.0, now - before - self.interval)
            self.last_tick = now
            self._gauge.set(self.lag)

    def check(self) -> tuple[bool, str]:
        """For Health.live_checks (called from the metrics thread)."""
        since = time.monotonic() - self.last_tick
        if since > self.threshold:
            return False, f"event loop blocked for {since:.1f} s (threshold {self.threshold:g} s)"
        return True, f"running (lag {self.lag * 1000:.0f} ms)"
