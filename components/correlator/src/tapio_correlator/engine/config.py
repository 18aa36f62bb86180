"""EngineConfig: the windows and thresholds of the correlation rules (docs/CORRELATION.md), declared
once with their defaults and help; `tapio_common.config.load_settings` builds them from the
`correlator.engine` YAML section and the engine flags that `serve` and `replay` share."""

from __future__ import annotations

import attrs

from tapio_common.config.schema import above, at_least, setting
from tapio_common.errors import ConfigError

MS = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND

DEFAULT_CRITICAL_UNITS = frozenset({"kubelet", "containerd", "crio", "cri-o", "docker"})


@attrs.frozen(kw_only=True)
class EngineConfig:
    """Windows (Unix-nanosecond durations) and thresholds. Defaults are the contract's.

    `reorder_slack_ns`: how late (in event time) an event may arrive and still be processed in
    time order. The engine holds events that long before processing them, so it is also the
    latency (in event time) between an event and the correlation it completes; 0 processes every
    event on arrival (late events then are taken as they come).
    """

    reorder_slack_ns: int = setting(
        SECOND // 2,
        "how long (event time) the engine waits for out-of-order events before acting; adds to the latency of every correlation",
        check=at_least(0),
        unit="ns",
    )
    clock_skew_ns: int = setting(
        SECOND,
        "how far node clocks may disagree: a cause stamped up to this much after its effects is still their cause",
        check=at_least(0),
        unit="ns",
    )
    late_grace_ns: int = setting(
        15 * MINUTE,
        "how long after its windows closed an incident (and a failure that joined nothing) waits for late "
        "events, e.g. a collector's spool after an outage (at most the incident max age)",
        check=at_least(0),
        unit="ns",
    )
    seen_ids_retention_ns: int = setting(
        60 * MINUTE,
        "how long (event time) the ids of the events the engine took are remembered, so a redelivery is a no-op",
        check=above(0),
        unit="ns",
    )
    max_seen_ids: int = setting(
        500_000,
        "most event ids remembered for redeliveries (memory bound: about 170 bytes each)",
        check=above(0),
    )
    cascade_window_ns: int = setting(
        5 * MINUTE,
        "window linking a cause to cascading effects on one workload",
        check=above(0),
        unit="ns",
    )
    node_window_ns: int = setting(
        5 * MINUTE,
        "window linking a node problem to its pods' failures",
        check=above(0),
        unit="ns",
    )
    crash_window_ns: int = setting(
        10 * MINUTE,
        "window counting container restarts of one pod (crash_loop)",
        check=above(0),
        unit="ns",
    )
    crash_min_restarts: int = setting(
        3,
        "restarts within the crash window that make a crash_loop",
        check=above(0),
    )
    crash_high_restarts: int = setting(
        5,
        "restarts within the crash window that make it high confidence",
        check=above(0),
    )
    pressure_window_ns: int = setting(
        10 * MINUTE,
        "window linking memory/disk pressure to OOM kills and evictions",
        check=above(0),
        unit="ns",
    )
    oom_repeat_window_ns: int = setting(
        5 * MINUTE,
        "window in which repeated OOM kills of one workload count together",
        check=above(0),
        unit="ns",
    )
    network_window_ns: int = setting(
        2 * MINUTE,
        "window grouping network loss, retransmits and drops",
        check=above(0),
        unit="ns",
    )
    retransmit_threshold: int = setting(
        50,
        "TCP retransmits within the network window that count as degradation",
        check=above(0),
    )
    loss_ratio_threshold: float = setting(
        0.01,
        "packet loss ratio that counts as degradation",
        check=above(0),
    )
    drop_threshold: int = setting(
        100,
        "packet drops within the network window that count as degradation",
        check=above(0),
    )
    latency_window_ns: int = setting(
        2 * MINUTE,
        "window grouping slow requests of one workload",
        check=above(0),
        unit="ns",
    )
    latency_threshold_ns: int = setting(
        200 * MS,
        "request latency above which a request counts as slow",
        check=above(0),
        unit="ns",
    )
    latency_min_events: int = setting(
        3,
        "slow requests within the latency window that make a performance_degradation",
        check=above(0),
    )
    perf_window_ns: int = setting(
        5 * MINUTE,
        "window linking slowness to its cause (CPU throttling, pressure)",
        check=above(0),
        unit="ns",
    )
    deploy_window_ns: int = setting(
        10 * MINUTE,
        "window linking a rollout to the failures of its new pods",
        check=above(0),
        unit="ns",
    )
    potential_window_ns: int = setting(
        10 * MINUTE,
        "how long an error/critical event may wait for a link before it is reported alone (potential_issue)",
        check=above(0),
        unit="ns",
    )
    critical_units: frozenset[str] = setting(
        DEFAULT_CRITICAL_UNITS,
        "systemd units whose failure on a node is a node problem",
        converter=frozenset,
    )
    incident_max_age_ns: int = setting(
        60 * MINUTE,
        "an incident older than this takes no more events (a long crash loop is reported once per max age)",
        check=above(0),
        unit="ns",
    )
    max_incident_events: int = setting(
        1000,
        "events kept per incident (memory bound)",
        check=above(0),
    )
    max_pods: int = setting(
        2_000_000,
        "pods tracked in the topology (memory bound)",
        check=above(0),
    )
    sweep_interval_ns: int = setting(
        SECOND,
        "how often (event time) expired windows and incidents are swept",
        check=above(0),
        unit="ns",
    )

    def __attrs_post_init__(self) -> None:
        if self.late_grace_ns > self.incident_max_age_ns:
            raise ConfigError(
                f"correlator: late_grace_ns ({self.late_grace_ns}) must not exceed incident_max_age_ns "
                f"({self.incident_max_age_ns})"
            )
