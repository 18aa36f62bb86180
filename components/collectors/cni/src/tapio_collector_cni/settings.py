"""Settings of the CNI collector, declared once (defaults and help) in one frozen attrs class.

Built from the `cni-collector:` YAML section and the flags (flags win); every bad value is
refused with one line naming the setting.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

import attrs

from tapio_collector_cni.domain.thresholds import Thresholds
from tapio_common.errors import ConfigError

RUNTIMES = ("containerd", "crio", "docker")


def _positive(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{attribute.name} must be > 0, got {value}")


def _non_negative(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ConfigError(f"{attribute.name} must be >= 0, got {value}")


def _ratio(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0 < value <= 1:
        raise ConfigError(f"{attribute.name} must be a fraction in (0, 1], e.g. 0.01 for 1 %, got {value}")


def _runtime(_inst: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in RUNTIMES:
        raise ConfigError(f"{attribute.name} must be one of {', '.join(RUNTIMES)}, got {value!r}")


def _globs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",")]
    return tuple(str(v).strip() for v in value if str(v).strip())


@attrs.frozen(kw_only=True)
class CniSettings:
    """What the CNI collector samples, how often, and when a window is reported (help: HELP)."""

    interval: float = attrs.field(default=10.0, validator=_positive)
    loss_ratio: float = attrs.field(default=0.01, validator=_ratio)
    drops: int = attrs.field(default=100, validator=_positive)
    errors: int = attrs.field(default=100, validator=_positive)
    min_count: int = attrs.field(default=10, validator=_positive)
    interfaces: tuple[str, ...] = attrs.field(default=("*",), converter=_globs)
    exclude: tuple[str, ...] = attrs.field(default=("lo",), converter=_globs)
    netns: str = ""
    cni_conf_dir: str = "/etc/cni/net.d"
    cni_check_interval: float = attrs.field(default=30.0, validator=_positive)
    link_refresh: float = attrs.field(default=60.0, validator=_positive)
    max_interfaces: int = attrs.field(default=16384, validator=_positive)
    container_runtime: str = attrs.field(default="containerd", validator=_runtime)
    proc: str = "/proc"
    peer_retry: float = attrs.field(default=30.0, validator=_non_negative)

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(self.loss_ratio, self.drops, self.errors, self.min_count)

    @property
    def netns_path(self) -> str:
        if not self.netns:
            return ""
        return self.netns if "/" in self.netns else f"/run/netns/{self.netns}"


FIELDS = attrs.fields(CniSettings)


def field_help(name: str) -> str:
    return HELP[name]


HELP: dict[str, str] = {
    "interval": "seconds between two samples of every interface; also the window of a finding",
    "loss_ratio": "report a direction when drops (or errors) reach this share of its packets",
    "drops": "report packet_loss at this many drops in one window, whatever the ratio",
    "errors": "report errors at this many errors in one window, whatever the ratio",
    "min_count": "drops or errors a window needs before the ratio rule applies",
    "interfaces": "interface name globs to watch, comma-separated",
    "exclude": "interface name globs never reported, comma-separated",
    "netns": "network namespace to sample (/run/netns name or path); empty = the collector's own",
    "cni_conf_dir": "CNI network configuration directory",
    "cni_check_interval": "seconds between two readings of the CNI configuration directory",
    "link_refresh": "seconds after which interface names and veth peers are re-read anyway",
    "max_interfaces": "interfaces tracked at most; the rest are counted, not reported",
    "container_runtime": "runtime assumed when a cgroup path does not name one (containerd|crio|docker)",
    "proc": "where the host's procfs is mounted",
    "peer_retry": "seconds before a veth peer namespace without processes is looked for again",
}


METAVARS = {
    "interval": "SECONDS",
    "cni_check_interval": "SECONDS",
    "link_refresh": "SECONDS",
    "peer_retry": "SECONDS",
    "loss_ratio": "RATIO",
    "drops": "N",
    "errors": "N",
    "min_count": "N",
    "max_interfaces": "N",
    "interfaces": "GLOBS",
    "exclude": "GLOBS",
    "netns": "NAME|PATH",
    "cni_conf_dir": "DIR",
    "proc": "DIR",
    "container_runtime": "RUNTIME",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("CNI collector (YAML section `cni-collector:`, same keys with _)")
    defaults = CniSettings()
    for f in FIELDS:
        default = getattr(defaults, f.name)
        shown = ",".join(default) if isinstance(default, tuple) else (default if default != "" else '""')
        g.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f"cni_{f.name}",
            metavar=METAVARS.get(f.name, f.name.upper()),
            help=f"{HELP[f.name]} (default {shown})",
        )


def from_sources(args: argparse.Namespace, section: Mapping[str, Any]) -> CniSettings:
    known = {f.name: f for f in FIELDS}
    values: dict[str, Any] = {}
    for key, raw in section.items():
        name = str(key).replace("-", "_")
        if name not in known:
            raise ConfigError(f"unknown key {key!r} in the cni-collector section (known: {', '.join(known)})")
        values[name] = raw
    for name in known:
        flag = getattr(args, f"cni_{name}", None)
        if flag is not None:
            values[name] = flag
    for name, raw in list(values.items()):
        values[name] = _coerce(name, raw, known[name].type)
    try:
        return CniSettings(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"bad cni-collector setting: {e}") from e


def _coerce(name: str, raw: Any, tp: Any) -> Any:
    text = str(tp)
    try:
        if text in ("float", "<class 'float'>"):
            return float(raw)
        if text in ("int", "<class 'int'>"):
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            return int(raw)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from e
    if "tuple" in text:
        return raw
    return str(raw)
