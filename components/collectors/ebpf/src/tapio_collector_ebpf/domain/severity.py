"""Severity of each kernel finding: pure, configurable rules (thresholds in one frozen class).

OOM kills are critical; exits by their status; retransmits, resets and failed connects by their
rate in the window; connect latency by threshold.
"""

from __future__ import annotations

import attrs

from tapio.events.v1 import events_pb2
from tapio_common.config.schema import above, setting

DEBUG = events_pb2.SEVERITY_DEBUG
INFO = events_pb2.SEVERITY_INFO
WARNING = events_pb2.SEVERITY_WARNING
ERROR = events_pb2.SEVERITY_ERROR
CRITICAL = events_pb2.SEVERITY_CRITICAL

# Signals whose death means a crash: SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGKILL, SIGSEGV, SIGSYS.
CRASH_SIGNALS = frozenset({4, 6, 7, 8, 9, 11, 31})


@attrs.frozen(kw_only=True)
class SeverityRules:
    retransmit_warning_per_s: float = setting(
        1.0, "retransmits per second of a flow for warning", check=above(0)
    )
    retransmit_error_per_s: float = setting(
        50.0, "retransmits per second of a flow for error", check=above(0)
    )
    reset_warning_per_s: float = setting(5.0, "resets per second of a flow for warning", check=above(0))
    reset_error_per_s: float = setting(100.0, "resets per second of a flow for error", check=above(0))
    connect_failed_warning_per_s: float = setting(
        1.0, "failed connects per second of a flow for warning", check=above(0)
    )
    connect_failed_error_per_s: float = setting(
        50.0, "failed connects per second of a flow for error", check=above(0)
    )
    latency_warning_ns: int = setting(100_000_000, "connect latency for warning", check=above(0), unit="ns")
    latency_error_ns: int = setting(1_000_000_000, "connect latency for error", check=above(0), unit="ns")

    def oom(self) -> int:
        return CRITICAL

    def exec(self) -> int:
        return DEBUG

    def exit(self, exit_code: int, signal: int) -> int:
        if signal in CRASH_SIGNALS:
            return ERROR
        if signal or exit_code > 0:
            return WARNING
        return DEBUG

    @staticmethod
    def _rate(count: int, window_ns: int, warning: float, error: float) -> int:
        per_s = count * 1e9 / window_ns if window_ns > 0 else float(count)
        if per_s >= error:
            return ERROR
        if per_s >= warning:
            return WARNING
        return INFO

    def retransmit(self, count: int, window_ns: int) -> int:
        return self._rate(count, window_ns, self.retransmit_warning_per_s, self.retransmit_error_per_s)

    def reset(self, count: int, window_ns: int) -> int:
        return self._rate(count, window_ns, self.reset_warning_per_s, self.reset_error_per_s)

    def connect_failed(self, count: int, window_ns: int) -> int:
        return self._rate(
            count, window_ns, self.connect_failed_warning_per_s, self.connect_failed_error_per_s
        )

    def latency(self, latency_ns: int) -> int:
        if latency_ns >= self.latency_error_ns:
            return ERROR
        if latency_ns >= self.latency_warning_ns:
            return WARNING
        return INFO
