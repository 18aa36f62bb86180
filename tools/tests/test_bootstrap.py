"""`make setup` installs from Debian every tool the tests need, so on a fresh Debian machine no
test skips for a missing tool (a strict run fails on such a skip: tapio_testing.skip_policy)."""

from __future__ import annotations

import re
from pathlib import Path

BOOTSTRAP = Path(__file__).parents[1] / "setup" / "bootstrap.sh"

# The command a suite needs -> the Debian package bootstrap.sh must install for it.
TOOLS = {
    "kubectl": "kubernetes-client",  # infra overlay rendering, Terraform tests
    "rsyslogd": "rsyslog",  # the exporter's syslog receiver (plain and TLS: rsyslog-gnutls)
    "alertmanager": "prometheus-alertmanager",
    "ip": "iproute2",  # netns, veth, tc for the CNI tests
    "dbus-daemon": "dbus",  # the systemd collector's bus
    "nix-instantiate": "nix-bin",  # flake.nix parses
    "podman": "podman",  # the container engine for testcontainers
    "bazel": "bazel-bootstrap",
}


def apt_packages() -> set[str]:
    text = BOOTSTRAP.read_text(encoding="utf-8")
    block = re.search(r"^APT_PACKAGES=\((.*?)^\)", text, re.S | re.M)
    assert block, "bootstrap.sh has no APT_PACKAGES list"
    names = {w for line in block.group(1).splitlines() for w in line.split("#")[0].split()}
    for extra in re.findall(r"APT_PACKAGES\+=\(([^)]*)\)", text):  # the conditional ones (kubectl)
        names |= set(extra.split())
    return names


def test_every_tool_of_the_tests_comes_from_a_package_bootstrap_installs() -> None:
    packages = apt_packages()
    missing = {tool: pkg for tool, pkg in TOOLS.items() if pkg not in packages}
    assert not missing, f"bootstrap.sh does not install {missing}"
    assert {"rsyslog-gnutls", "gnutls-bin", "python3-bpfcc", "linux-headers-amd64"} <= packages
