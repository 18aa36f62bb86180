"""CPU seconds per unit of work (an event, an alert), by process: the load-independent figure of a
benchmark on a shared machine.

A bench names the processes that take part (the component under test, nats-server, the load
generator, receivers...), calls `start()` before its timed part and `stop()` after it, then prints
`report(units, "alert")`: each process's CPU (user + system, from /proc through psutil) per unit,
their total, and the rate that total allows on this machine's cores if nothing else ran
(`cores * 1e6 / total_us`), with the load average. A rate measured on a busy machine is a lower
bound; the CPU per unit is what a quiet machine reproduces.

`profile_stages(stats_file, rules)` splits one process's cProfile stats (taken with a CPU timer:
`cProfile.Profile(time.process_time)`) into named stages by where each function lives, so a bench
can say which part of a component the CPU goes to.

Used by bench/exporter.py; bench/correlator_e2e.py can use `CpuBudget` for the same lines.
"""

from __future__ import annotations

import os
import pstats
from collections.abc import Callable, Mapping, Sequence

import psutil

Rule = tuple[str, Callable[[str, str], bool]]  # (stage, predicate on (file, function name))
Func = tuple[str, int, str]  # cProfile's key: (file, line, function name)
_CALLER_DEPTH = 4


def process_cpu(proc: psutil.Process) -> float:
    """CPU seconds (user + system) of a process; nan once it is gone."""
    try:
        t = proc.cpu_times()
    except psutil.Error:
        return float("nan")
    return float(t.user + t.system)


def loadavg_text() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


class CpuBudget:
    """CPU of named processes between `start()` and `stop()`."""

    def __init__(self, processes: Mapping[str, int | psutil.Process]) -> None:
        self.procs = {
            name: p if isinstance(p, psutil.Process) else psutil.Process(p) for name, p in processes.items()
        }
        self.before: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> None:
        self.before = {k: process_cpu(p) for k, p in self.procs.items()}

    def stop(self) -> dict[str, float]:
        """CPU seconds each process used since `start()`."""
        self.used = {k: process_cpu(p) - self.before[k] for k, p in self.procs.items()}
        return self.used

    def per_unit_us(self, units: int) -> dict[str, float]:
        return {k: v / max(units, 1) * 1e6 for k, v in self.used.items()}

    def total_us(self, units: int) -> float:
        return sum(v for v in self.per_unit_us(units).values() if v == v)

    def report(self, units: int, unit: str) -> str:
        """`CPU per alert: exporter 354 us, nats-server 98 us, ...; total 600 us: 2 cores hold at
        most 3333 alerts/s at that cost; load average ...`"""
        per = self.per_unit_us(units)
        total = self.total_us(units)
        cores = os.cpu_count() or 1
        bound = cores * 1e6 / total if total > 0 else float("nan")
        parts = ", ".join(f"{k} {v:.0f} us" for k, v in per.items())
        return (
            f"CPU per {unit}: {parts}; total {total:.0f} us: {cores} cores hold at most {bound:.0f} "
            f"{unit}s/s at that cost; {loadavg_text()}"
        )


def profile_stages(stats_file: str, rules: Sequence[Rule], other: str = "other") -> dict[str, float]:
    """CPU seconds of a cProfile dump by stage: each function's own time (tottime) goes to the first
    rule whose predicate takes its (file, function name); a function no rule takes (a built-in, a
    dict method, an enum property...) passes its time on to its callers, in proportion to what each
    caller spent in it, up to a few levels; what is still unclaimed goes to `other`."""
    stats = pstats.Stats(stats_file)
    raw: dict[Func, tuple[int, int, float, float, dict[Func, tuple[int, int, float, float]]]]
    raw = stats.stats  # type: ignore[attr-defined]
    out: dict[str, float] = {name: 0.0 for name, _ in rules}
    out[other] = 0.0

    def stage(func: Func) -> str | None:
        for name, takes in rules:
            if takes(func[0], func[2]):
                return name
        return None

    def assign(func: Func, seconds: float, depth: int) -> None:
        name = stage(func)
        if name is not None:
            out[name] += seconds
            return
        callers = raw[func][4] if func in raw else {}
        spent = sum(c[2] for c in callers.values())
        if depth >= _CALLER_DEPTH or spent <= 0:
            out[other] += seconds
            return
        for caller, c in callers.items():
            assign(caller, seconds * c[2] / spent, depth + 1)

    for func, (_cc, _nc, tottime, _ct, _callers) in raw.items():
        assign(func, tottime, 0)
    return out


def in_files(*parts: str) -> Callable[[str, str], bool]:
    """A predicate: the function's file path contains one of `parts`."""
    return lambda file, _func: any(p in file for p in parts)


def named(file_part: str, *funcs: str) -> Callable[[str, str], bool]:
    """A predicate: a function of these names in a file whose path contains `file_part`
    (`"~"` for built-ins, whose names cProfile gives as `<method 'isspace' of 'str' objects>`)."""
    return lambda file, func: file_part in file and any(f in func for f in funcs)


def spread(seconds: float, weights: Mapping[str, float]) -> dict[str, float]:
    """Shares `seconds` out in proportion to `weights` (e.g. messages of each kind)."""
    total = sum(weights.values()) or 1.0
    return {k: seconds * w / total for k, w in weights.items()}
