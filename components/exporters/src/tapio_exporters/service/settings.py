"""Settings of the exporter service: the `siem-exporter:` section of --config and the flags, built by
the house loader (`tapio_common.config.load_settings`); sinks are listed under `sinks:` (sinkspec.py)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from tapio_common.config import above, at_least, load_settings, one_of, setting
from tapio_common.errors import ConfigError
from tapio_exporters.domain.alerts import AlertTemplate, check_runbook_template
from tapio_exporters.domain.event_alerts import SEVERITY_NAMES
from tapio_exporters.domain.lifecycle import DEFAULT_WINDOW_NS, DEFAULT_WINDOWS_NS, LifecycleSettings

NS = 1_000_000_000
SECTION = "siem-exporter"
PUBLISHER_SECTION = "publisher"


def _runbook(_inst: Any, _field: Any, value: str) -> None:
    try:
        check_runbook_template(value)
    except ValueError as e:
        raise ConfigError(str(e)) from e


def _windows(_inst: Any, _field: Any, value: Mapping[str, float]) -> None:
    for key, seconds in value.items():
        if seconds <= 0:
            raise ConfigError(f"{key}: must be more than 0 seconds, not {seconds}")


@attrs.frozen(kw_only=True)
class ExporterSettings:
    """How the exporter turns correlations into alerts and feeds its sinks."""

    runbook_template: str = setting(
        "",
        "runbook URL of every alert; fields {type} {component} {namespace} {severity} {alert_id} "
        "{correlation_id}, e.g. https://runbooks.example.com/tapio/{type}",
        check=_runbook,
        metavar="URL",
    )
    resolve_after: float = setting(
        0.0,
        "seconds without a new member before an incident of any type resolves "
        "(0: per type, the correlator's windows, 120-600 s; see resolve_after_by_type)",
        check=at_least(0),
        metavar="SECONDS",
    )
    resolve_after_by_type: Mapping[str, float] = setting(
        factory=dict, help="seconds per correlation type, e.g. {crash_loop: 900}", check=_windows, flag=""
    )
    labels: Mapping[str, str] = setting(factory=dict, help="extra labels put on every alert", flag="")
    state_lookback: float = setting(
        86400.0,
        "seconds of TAPIO_ALERTS read back on start to rebuild the open alerts (at least the longest window)",
        check=above(0),
        flag="",
    )
    events_min_severity: str = setting(
        "off",
        "also alert on the events the pipeline routes to its siem destination (tapio.processed.*.siem, "
        "durable consumer siem-exporter-events) at or above this severity: debug|info|warning|error|critical, "
        "or off (the default): correlations only. An event alert fires once and resolves after resolve_after_by_type.event "
        "(else the default window)",
        check=one_of(("off", *SEVERITY_NAMES)),
        metavar="SEVERITY",
    )
    fetch_batch: int = setting(500, "correlations handled together at most", check=at_least(1), flag="")
    fetch_timeout: float = setting(1.0, "seconds a pull waits on a quiet stream", check=above(0), flag="")
    idle_advance: float = setting(
        2.0,
        "quiet input for this many seconds: event time follows the clock (resolves)",
        check=above(0),
        flag="",
    )
    retry_max: float = setting(
        30.0, "longest pause between delivery attempts of a failing sink", check=above(0), flag=""
    )
    linger: float = setting(
        0.05,
        "seconds a batch (correlations to alert on, alerts for a sink) waits for more after its first",
        check=at_least(0),
        flag="",
    )
    sink_read_back: bool = setting(
        False,
        "sinks read every alert back from TAPIO_ALERTS through their durable consumers instead of "
        "getting it from memory (one more NATS read and ack per alert and sink); always so on a "
        "nats-server older than 2.14 (no consumer reset to keep their positions)",
        flag="",
    )
    provision: bool = setting(False, "create/update the streams on start (always with the embedded server)")
    replicas: int = setting(1, "stream replicas when provisioning (3 in a cluster)", check=at_least(1))
    sinks: tuple[Mapping[str, Any], ...] = setting(
        (), "the sinks, one mapping each (see sinks above)", flag=""
    )
    publisher: Mapping[str, Any] = setting(factory=dict, help="the publisher's own settings", flag="")

    def __attrs_post_init__(self) -> None:
        longest = self.lifecycle.max_window_ns
        if self.state_lookback * NS < longest:
            raise ConfigError(
                f"state_lookback ({self.state_lookback:.0f}s) must be at least the longest resolve window ({longest / NS:.0f}s)"
            )

    @property
    def lifecycle(self) -> LifecycleSettings:
        if self.resolve_after:
            windows: dict[str, int] = {}
            default = int(self.resolve_after * NS)
        else:
            windows, default = dict(DEFAULT_WINDOWS_NS), DEFAULT_WINDOW_NS
        windows.update({k: int(v * NS) for k, v in self.resolve_after_by_type.items()})
        return LifecycleSettings(
            windows_ns=windows,
            default_window_ns=default,
            retain_ns=max(3600 * NS, 2 * max([default, *windows.values()])),
            template=AlertTemplate(self.runbook_template, dict(self.labels)),
        )

    @classmethod
    def load(
        cls,
        section: Mapping[str, Any] | None,
        *,
        args: argparse.Namespace | None = None,
        extra_sinks: Sequence[Mapping[str, Any]] = (),
        overrides: Mapping[str, Any] | None = None,
    ) -> ExporterSettings:
        """From the section (a Section of the --config file, or a mapping), flags in `args`, the
        environment; `extra_sinks` (the --sink flags) come after the file's sinks."""
        doc = dict(section or {})
        sinks = doc.get("sinks") or []
        if not isinstance(sinks, list) or not all(isinstance(s, Mapping) for s in sinks):
            raise ConfigError(f"{SECTION}.sinks must be a list of mappings (one per sink)")
        all_sinks = tuple(dict(s) for s in [*sinks, *extra_sinks])
        return load_settings(
            cls,
            section,
            args=args,
            overrides={"sinks": all_sinks, **(overrides or {})},
            allow=(PUBLISHER_SECTION,),
            name=SECTION,
        )
