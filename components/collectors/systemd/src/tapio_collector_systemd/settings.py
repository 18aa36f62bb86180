"""The systemd collector's settings: one frozen class, defaults in one place; built from flags >
environment > the `systemd-collector:` section of the config file > defaults."""

from __future__ import annotations

import argparse
import os
import textwrap
from collections.abc import Mapping
from typing import Any

import attrs

from tapio_collector_systemd.domain.events import NODE_CRITICAL
from tapio_collector_systemd.domain.filters import DEFAULT_INCLUDE, UnitFilter, globs
from tapio_common.errors import ConfigError

COMPONENT = "systemd-collector"
ENV_BUS = "TAPIO_SYSTEMD_BUS"


def _non_negative(_inst: object, a: attrs.Attribute[Any], v: float) -> None:
    if v < 0:
        raise ConfigError(f"{COMPONENT}.{a.name} must be >= 0, got {v}")


def _positive(_inst: object, a: attrs.Attribute[Any], v: float) -> None:
    if v <= 0:
        raise ConfigError(f"{COMPONENT}.{a.name} must be > 0, got {v}")


@attrs.frozen
class SystemdSettings:
    include: tuple[str, ...] = attrs.field(default=DEFAULT_INCLUDE, converter=globs)
    exclude: tuple[str, ...] = attrs.field(default=(), converter=globs)
    bus_address: str = ""  # "" = the system bus (DBUS_SYSTEM_BUS_ADDRESS or /run/dbus/system_bus_socket)
    journal_lines: int = attrs.field(default=10, validator=_non_negative)
    journal_root: str = ""
    journal_delay: float = attrs.field(default=0.2, validator=_non_negative)
    reconnect_min: float = attrs.field(default=0.5, validator=_positive)
    reconnect_max: float = attrs.field(default=10.0, validator=_positive)
    queue: int = attrs.field(default=65536, validator=_positive)
    state_interval: float = attrs.field(default=0.5, validator=_positive)
    critical_units: tuple[str, ...] = attrs.field(default=tuple(sorted(NODE_CRITICAL)), converter=globs)
    filter: UnitFilter = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "filter", UnitFilter(self.include, self.exclude))  # validates the globs
        if self.reconnect_min > self.reconnect_max:
            raise ConfigError(f"{COMPONENT}.reconnect_min must be <= reconnect_max")


HELP = {
    "include": "unit glob to follow, repeatable (default: the units of a Kubernetes node, see below)",
    "exclude": "unit glob to leave out, repeatable (wins over --unit)",
    "bus_address": f"D-Bus address of the bus systemd is on (env {ENV_BUS}; default: the system bus)",
    "journal_lines": "journal lines attached to a failed unit's event (0 = none; default 10)",
    "journal_root": "read the journal under this root (`journalctl --root`, e.g. /host in a pod)",
    "journal_delay": "seconds to let journald store a failed unit's last output before reading it (default 0.2)",
    "reconnect_min": "first pause before reconnecting to the bus, doubling (default 0.5 s)",
    "reconnect_max": "longest pause between reconnection attempts (default 10 s)",
    "queue": "signals buffered between D-Bus and the publisher; beyond it the source relists (default 65536)",
    "state_interval": "seconds between writes of the last published states (default 0.5)",
    "critical_units": "units whose failure is critical, without .service (default kubelet, containerd, crio, cri-o, docker)",
}
FLAGS = {
    "include": ("--unit", "GLOB"),
    "exclude": ("--exclude-unit", "GLOB"),
    "bus_address": ("--bus", "ADDRESS"),
    "journal_lines": ("--journal-lines", "N"),
    "journal_root": ("--journal-root", "DIR"),
    "journal_delay": ("--journal-delay", "SECONDS"),
    "critical_units": ("--critical-unit", "NAME"),
}
SETTINGS_HELP = f"""\
units followed by default (globs, like systemctl list-units PATTERN):
{textwrap.fill(", ".join(DEFAULT_INCLUDE), 96, initial_indent="  ", subsequent_indent="  ")}

config file (`{COMPONENT}:` section; a flag wins over its key):
  include: [GLOB, ...]      exclude: [GLOB, ...]       bus_address: ADDRESS
  journal_lines: 10         journal_root: DIR          journal_delay: 0.2
  reconnect_min: 0.5        reconnect_max: 10          queue: 65536
  state_interval: 0.5       critical_units: [kubelet, ...]
  publisher: {{...}}          (publisher settings; default batch_max_events 1: one message per event)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("systemd collector options")
    for name, (flag, metavar) in FLAGS.items():
        repeat = name in ("include", "exclude", "critical_units")
        kind: Any = int if name == "journal_lines" else float if name == "journal_delay" else str
        g.add_argument(flag, dest=f"sd_{name}", metavar=metavar, help=HELP[name],
                       action="append" if repeat else "store", type=kind)  # fmt: skip


def load(
    args: argparse.Namespace, section: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> SystemdSettings:
    """Flags > environment > the YAML section > defaults; ConfigError names the key."""
    env = os.environ if env is None else env
    fields = {f.name for f in attrs.fields(SystemdSettings) if f.init}
    values: dict[str, Any] = {}
    for key, raw in section.items():
        if key == "publisher":
            continue
        if key not in fields:
            raise ConfigError(
                f"unknown key {key!r} in {COMPONENT} (known: {', '.join(sorted(fields))}, publisher)"
            )
        values[key] = _coerce(key, raw)
    if env.get(ENV_BUS):
        values["bus_address"] = env[ENV_BUS]
    for name in FLAGS:
        value = getattr(args, f"sd_{name}", None)
        if value is not None:
            values[name] = value
    try:
        return SystemdSettings(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad {COMPONENT} setting: {e}") from e


def _coerce(key: str, raw: Any) -> Any:
    default = attrs.fields_dict(SystemdSettings)[key].default
    try:
        if isinstance(default, tuple):
            if isinstance(raw, str):
                return (raw,)
            if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
                raise TypeError
            return tuple(raw)
        if isinstance(default, bool) or not isinstance(default, int | float | str):
            raise TypeError
        return type(default)(raw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad {COMPONENT}.{key}: {raw!r} is not a {type(default).__name__}") from e
