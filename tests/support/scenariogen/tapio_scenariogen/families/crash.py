"""crash_loop: one pod restarts >= 3 times in 10 minutes with a non-zero exit code (not OOMKilled)."""

from __future__ import annotations

from tapio_common.model import Event, Severity
from tapio_scenariogen.families.common import CRASH_EXIT_CODES, Builder, restart_series, restart_times
from tapio_scenariogen.world import CRASH_WINDOW, World


def crash_loop_events(w: World, t0: float, count: int) -> list[Event]:
    """`count` restarts of one free pod, all inside the crash-loop window; the pod is reserved."""
    dep = w.workload(min_replicas=2)
    pod = w.rng.choice(dep.pods)
    times = restart_times(w, t0, count, CRASH_WINDOW - 60)
    exit_code = w.rng.choice(CRASH_EXIT_CODES)
    sev = Severity.ERROR if w.rng.random() < 0.25 else Severity.WARNING
    events = restart_series(
        w, pod, times, exit_code, w.rng.choice((2, 3, 3, 4, 99)), sev, verbose=w.rng.random() < 0.7
    )
    end = times[-1]
    if w.rng.random() < 0.6:
        end += w.jitter(30, 120)
        w.emit.pod_updated(end, pod)
    w.guard([pod.node], [pod], t0, end)
    return events


def medium(w: World, t0: float) -> float:
    """One pod restarts 3-4 times in 10 minutes with a non-zero exit code (medium)."""
    events = crash_loop_events(w, t0, w.rng.choice((3, 4)))
    w.expect("crash_loop", events[0], events, "medium")
    return w.at(events[-1])


def high(w: World, t0: float) -> float:
    """One pod restarts 5-9 times in 10 minutes with a non-zero exit code (high)."""
    events = crash_loop_events(w, t0, w.rng.randint(5, 9))
    w.expect("crash_loop", events[0], events, "high")
    return w.at(events[-1])


VARIANTS: dict[str, Builder] = {"medium": medium, "high": high}
