"""The systemd collector's settings, declared once (default, help, flag, env) in one frozen attrs
class and built by the one loader (`tapio_common.config.load_settings`) from flags > environment >
the `systemd-collector:` YAML section > defaults; a bad value is one error naming the setting."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Mapping
from typing import Any

import attrs

from tapio_collector_systemd.domain.events import NODE_CRITICAL
from tapio_collector_systemd.domain.filters import DEFAULT_INCLUDE, UnitFilter, check_globs
from tapio_common.config import (
    above,
    add_settings_arguments,
    at_least,
    describe_settings,
    load_settings,
    setting,
)
from tapio_common.errors import ConfigError

COMPONENT = "systemd-collector"
ENV_BUS = "TAPIO_SYSTEMD_BUS"


@attrs.frozen(kw_only=True)
class SystemdSettings:
    """Which units are followed, where systemd is, and what a failed unit carries."""

    include: tuple[str, ...] = setting(
        DEFAULT_INCLUDE, "unit globs to follow, comma-separated (shell globs, as systemctl list-units "
        "PATTERN)", flag="--unit", metavar="GLOBS", check=check_globs, default_text="see below",
    )  # fmt: skip
    exclude: tuple[str, ...] = setting(
        (), "unit globs never followed, comma-separated (win over --unit)", flag="--exclude-unit",
        metavar="GLOBS", check=check_globs, default_text="none",
    )  # fmt: skip
    bus_address: str = setting(
        "", "D-Bus address of the bus systemd is on, e.g. unix:path=/host/run/dbus/system_bus_socket",
        env=ENV_BUS, flag="--bus", metavar="ADDRESS", default_text="system bus",
    )  # fmt: skip
    journal_lines: int = setting(10, "journal lines attached to a failed unit's event (0: none)",
                                 metavar="N", check=at_least(0))  # fmt: skip
    journal_root: str = setting(
        "", "read the journal under this root (journalctl --root), e.g. /host in a pod", metavar="DIR",
        default_text="none",
    )  # fmt: skip
    journal_delay: float = setting(
        0.2, "seconds journald gets to store a failed unit's last output before it is read",
        metavar="SECONDS", check=at_least(0),
    )  # fmt: skip
    reconnect_min: float = setting(0.5, "first pause before reconnecting to the bus (doubles)",
                                   metavar="SECONDS", check=above(0))  # fmt: skip
    reconnect_max: float = setting(10.0, "longest pause between reconnection attempts", metavar="SECONDS",
                                   check=above(0))  # fmt: skip
    queue: int = setting(65536, "signals buffered between D-Bus and the publisher; beyond, the units "
                         "are listed again", metavar="N", check=at_least(1))  # fmt: skip
    state_interval: float = setting(0.5, "seconds between writes of the last published state per unit",
                                    metavar="SECONDS", check=above(0))  # fmt: skip
    critical_units: tuple[str, ...] = setting(
        tuple(sorted(NODE_CRITICAL)), "units (without .service) whose failure is critical, comma-separated",
        flag="--critical-unit", metavar="NAMES",
    )  # fmt: skip

    def __attrs_post_init__(self) -> None:
        if self.reconnect_min > self.reconnect_max:
            raise ConfigError(
                f"reconnect_min ({self.reconnect_min}) must be <= reconnect_max ({self.reconnect_max})"
            )

    @property
    def filter(self) -> UnitFilter:
        return UnitFilter(self.include, self.exclude)


SETTINGS_HELP = f"""\
units followed by default:
{textwrap.fill(", ".join(DEFAULT_INCLUDE), 96, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False)}

{describe_settings(SystemdSettings, COMPONENT)}
  publisher: {{...}}  publisher settings (default here batch_max_events 1: one message per event)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_arguments(parser, SystemdSettings, f"systemd collector (YAML section `{COMPONENT}:`)")


def load(
    args: argparse.Namespace, section: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> SystemdSettings:
    """Flags > environment > the YAML section > defaults; ConfigError names the setting."""
    return load_settings(SystemdSettings, section, args=args, env=env, name=COMPONENT, allow=("publisher",))
