"""Settings of the CNI collector, declared once (default, help, flag) in one frozen attrs class
and built by the one loader (`tapio_common.config.load_settings`) from the flags and the
`cni-collector:` YAML section; every bad value is one error naming the setting and where it was set.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

import attrs

from tapio_collector_cni.domain.thresholds import Thresholds
from tapio_common.config import above, add_settings_arguments, at_least, load_settings, one_of, setting
from tapio_common.errors import ConfigError

RUNTIMES = ("containerd", "crio", "docker")
SECTION = "cni-collector"


def _fraction(_inst: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0 < value <= 1:
        raise ConfigError(f"{attribute.name} must be a fraction in (0, 1], e.g. 0.01 for 1 %, got {value}")


@attrs.frozen(kw_only=True)
class CniSettings:
    """What the CNI collector samples, how often, and when a window is reported."""

    interval: float = setting(
        10.0, "seconds between two samples of every interface; also the window of a finding",
        metavar="SECONDS", check=above(0),
    )  # fmt: skip
    loss_ratio: float = setting(
        0.01, "report a direction when its drops (or errors) reach this share of its packets",
        metavar="RATIO", check=_fraction,
    )  # fmt: skip
    drops: int = setting(
        100, "report packet_loss at this many drops in one window, whatever the ratio", check=above(0)
    )
    errors: int = setting(
        100, "report errors at this many errors in one window, whatever the ratio", check=above(0)
    )
    min_count: int = setting(
        10, "drops or errors a window needs before the ratio rule applies", check=above(0)
    )
    interfaces: tuple[str, ...] = setting(("*",), "interface name globs to report", metavar="GLOBS")
    exclude: tuple[str, ...] = setting(("lo",), "interface name globs never reported", metavar="GLOBS")
    netns: str = setting(
        "",
        "network namespace to sample (/run/netns name or path); empty = the collector's own",
        metavar="NAME|PATH",
    )
    cni_conf_dir: str = setting(
        "/etc/cni/net.d", "CNI network configuration directory", env="TAPIO_CNI_CONF_DIR", metavar="DIR"
    )
    cni_check_interval: float = setting(
        30.0,
        "seconds between two readings of the CNI configuration directory",
        metavar="SECONDS",
        check=above(0),
    )
    link_refresh: float = setting(
        60.0, "seconds after which interface names and veth peers are re-read anyway", metavar="SECONDS",
        check=above(0),
    )  # fmt: skip
    max_interfaces: int = setting(
        16384, "interfaces tracked at most; the rest are counted, not reported", check=above(0)
    )
    container_runtime: str = setting(
        "containerd", "runtime assumed when a cgroup path does not name one", metavar="|".join(RUNTIMES),
        check=one_of(RUNTIMES),
    )  # fmt: skip
    proc: str = setting("/proc", "where the host's procfs is mounted", env="TAPIO_PROC", metavar="DIR")
    peer_retry: float = setting(
        30.0, "seconds before a veth peer namespace without processes is looked for again", metavar="SECONDS",
        check=at_least(0),
    )  # fmt: skip

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(self.loss_ratio, self.drops, self.errors, self.min_count)

    @property
    def netns_path(self) -> str:
        if not self.netns:
            return ""
        return self.netns if "/" in self.netns else f"/run/netns/{self.netns}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting (`--loss-ratio` for `loss_ratio`), defaults shown from the class."""
    add_settings_arguments(
        parser, CniSettings, f"CNI collector (YAML section `{SECTION}:`, keys as the flags with _)"
    )


def from_sources(args: argparse.Namespace, section: Mapping[str, Any]) -> CniSettings:
    """Flags > environment > the YAML section > defaults; ConfigError names the setting."""
    return load_settings(CniSettings, section, args=args, name=SECTION, allow=("publisher",))
