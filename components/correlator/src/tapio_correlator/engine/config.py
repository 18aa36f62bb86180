"""EngineConfig: the windows and thresholds of CORRELATION.md (contract defaults), validated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from tapio_common.errors import ConfigError

MS = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND

DEFAULT_CRITICAL_UNITS = frozenset({"kubelet", "containerd", "crio", "cri-o", "docker"})


def _non_negative(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ConfigError(f"correlator: {attribute.name} must be >= 0, got {value}")


def _positive(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ConfigError(f"correlator: {attribute.name} must be > 0, got {value}")


@attrs.frozen(kw_only=True)
class EngineConfig:
    """Windows (Unix-nanosecond durations) and thresholds. Defaults are the contract's.

    `reorder_slack_ns`: how late (in event time) an event may arrive and still be processed in
    time order. The engine holds events that long before processing them, so it is also the
    latency (in event time) between an event and the correlation it completes; 0 processes every
    event on arrival (late events then are taken as they come).
    """

    reorder_slack_ns: int = attrs.field(default=3 * SECOND, validator=_non_negative)
    # Node clocks may disagree by this much: a cause stamped up to this much after (or an effect
    # up to this much before) the event it explains is still taken as its cause.
    clock_skew_ns: int = attrs.field(default=SECOND, validator=_non_negative)
    # How long after its windows closed an incident (and a failure that joined nothing) is kept
    # for events arriving late (a collector's spool after an outage): such an event still joins,
    # and re-roots the incident when it is its true cause. At most the incident max age.
    late_grace_ns: int = attrs.field(default=15 * MINUTE, validator=_non_negative)
    # Ids of the events the engine took, remembered this long (event time) so a redelivery is a
    # no-op; at most `max_seen_ids` of them (the oldest are forgotten first).
    seen_ids_retention_ns: int = attrs.field(default=60 * MINUTE, validator=_positive)
    max_seen_ids: int = attrs.field(default=500_000, validator=_positive)
    cascade_window_ns: int = attrs.field(default=5 * MINUTE, validator=_positive)
    node_window_ns: int = attrs.field(default=5 * MINUTE, validator=_positive)
    crash_window_ns: int = attrs.field(default=10 * MINUTE, validator=_positive)
    crash_min_restarts: int = attrs.field(default=3, validator=_positive)
    crash_high_restarts: int = attrs.field(default=5, validator=_positive)
    pressure_window_ns: int = attrs.field(default=10 * MINUTE, validator=_positive)
    oom_repeat_window_ns: int = attrs.field(default=5 * MINUTE, validator=_positive)
    network_window_ns: int = attrs.field(default=2 * MINUTE, validator=_positive)
    retransmit_threshold: int = attrs.field(default=50, validator=_positive)
    loss_ratio_threshold: float = attrs.field(default=0.01, validator=_positive)
    drop_threshold: int = attrs.field(default=100, validator=_positive)
    latency_window_ns: int = attrs.field(default=2 * MINUTE, validator=_positive)
    latency_threshold_ns: int = attrs.field(default=200 * MS, validator=_positive)
    latency_min_events: int = attrs.field(default=3, validator=_positive)
    perf_window_ns: int = attrs.field(default=5 * MINUTE, validator=_positive)
    deploy_window_ns: int = attrs.field(default=10 * MINUTE, validator=_positive)
    # How long an error/critical event may wait for a link before it is reported alone.
    potential_window_ns: int = attrs.field(default=10 * MINUTE, validator=_positive)
    critical_units: frozenset[str] = attrs.field(default=DEFAULT_CRITICAL_UNITS, converter=frozenset)
    # Caps that keep memory bounded whatever the input. An incident older than the max age takes
    # no more events (a crash loop lasting hours is reported once per max age).
    incident_max_age_ns: int = attrs.field(default=60 * MINUTE, validator=_positive)
    max_incident_events: int = attrs.field(default=1000, validator=_positive)
    max_pods: int = attrs.field(default=2_000_000, validator=_positive)
    sweep_interval_ns: int = attrs.field(default=SECOND, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.late_grace_ns > self.incident_max_age_ns:
            raise ConfigError(
                f"correlator: late_grace_ns ({self.late_grace_ns}) must not exceed incident_max_age_ns "
                f"({self.incident_max_age_ns})"
            )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> EngineConfig:
        """From a config section: field names, or `<name>_seconds` for a `<name>_ns` field.

        Example: {"reorder_slack_seconds": 1.5, "retransmit_threshold": 80}.
        """
        fields = {f.name for f in attrs.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key in fields:
                kwargs[key] = value
            elif key.endswith("_seconds") and f"{key[: -len('_seconds')]}_ns" in fields:
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ConfigError(f"correlator: {key} must be a number of seconds, got {value!r}")
                kwargs[f"{key[: -len('_seconds')]}_ns"] = round(value * SECOND)
            else:
                raise ConfigError(f"correlator: unknown setting {key!r}")
        try:
            return cls(**kwargs)
        except TypeError as e:
            raise ConfigError(f"correlator: bad setting: {e}") from e
