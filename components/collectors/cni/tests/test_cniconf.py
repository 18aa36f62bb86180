"""CNI configuration: plugin, chained plugins, pod interface naming, runtime order, changes."""

from __future__ import annotations

import json

import pytest

from tapio_collector_cni.domain.cniconf import CniConfig, change_action, parse_directory, parse_network
from tapio_collector_cni.domain.events import config_event
from tapio_publisher.subjects import event_subject

BRIDGE = {
    "cniVersion": "0.4.0",
    "name": "podman",
    "plugins": [{"type": "bridge", "bridge": "cni-podman0"}, {"type": "portmap"}, {"type": "firewall"}],
}
CALICO = {
    "cniVersion": "0.3.1",
    "name": "k8s-pod-network",
    "plugins": [{"type": "calico"}, {"type": "bandwidth"}],
}


def test_conflist_with_chained_plugins() -> None:
    net = parse_network("87-podman.conflist", json.dumps(BRIDGE))
    assert (net.name, net.plugin, net.chained, net.bridge) == (
        "podman",
        "bridge",
        ("portmap", "firewall"),
        "cni-podman0",
    )
    assert net.pod_interfaces == ("veth*",)


@pytest.mark.parametrize(
    ("plugin", "pod_if", "cni_if", "other"),
    [
        ("calico", "cali12ab34cd", "vxlan.calico", "eth0"),
        ("cilium-cni", "lxc0a1b2c", "cilium_host", "eth0"),
        ("flannel", "veth9f8e7d", "cni0", "ens5"),
    ],
)
def test_interface_roles(plugin: str, pod_if: str, cni_if: str, other: str) -> None:
    conf = parse_directory({"10-x.conf": json.dumps({"cniVersion": "0.3.1", "name": "n", "type": plugin})})
    assert conf.active is not None
    assert conf.active.plugin == plugin
    assert (conf.role(pod_if), conf.role(cni_if), conf.role(other)) == ("pod", "cni", "")


def test_multus_reports_its_delegate() -> None:
    doc = {"cniVersion": "0.3.1", "name": "multus-cni-network", "type": "multus", "delegates": [CALICO]}
    net = parse_network("00-multus.conf", json.dumps(doc))
    assert (net.plugin, net.name, net.chained) == ("calico", "multus-cni-network", ("multus", "bandwidth"))


def test_first_file_in_lexical_order_wins_and_bad_files_are_problems() -> None:
    conf = parse_directory(
        {
            "20-calico.conflist": json.dumps(CALICO),
            "10-broken.conf": "{not json",
            "99-notes.txt": "ignored",
            "87-podman.conflist": json.dumps(BRIDGE),
            "05-empty.conflist": json.dumps({"name": "x", "plugins": []}),
        }
    )
    assert conf.active is not None
    assert conf.active.file == "20-calico.conflist"
    assert [n.file for n in conf.networks] == ["20-calico.conflist", "87-podman.conflist"]
    assert conf.problems[0].startswith("05-empty.conflist: a .conflist needs")
    assert conf.problems[1].startswith("10-broken.conf: not JSON")


def test_change_actions() -> None:
    a = parse_directory({"10.conflist": json.dumps(CALICO)})
    b = parse_directory({"10.conflist": json.dumps(BRIDGE)})
    empty = parse_directory({})
    assert change_action(None, a) == "detected"
    assert change_action(None, empty) == ""
    assert change_action(a, a) == ""
    assert change_action(a, b) == "changed"
    assert change_action(a, empty) == "removed"
    assert (
        change_action(CniConfig(digest=a.digest), parse_directory({"10.conflist": json.dumps(CALICO)})) == ""
    )


def test_config_event() -> None:
    before = parse_directory({"10.conflist": json.dumps(CALICO)})
    after = parse_directory({"10.conflist": json.dumps(BRIDGE)})
    ev = config_event("changed", before.digest, after, "node-1", 5, "/etc/cni/net.d")
    assert (ev.type, ev.action, ev.time) == ("config", "changed", 5)
    assert ev.attributes["plugin"] == "bridge"
    assert ev.attributes["previous_digest"] == before.digest
    assert event_subject(ev) == "tapio.events.cni.podman.config"
    assert "uses plugin bridge (chained: portmap, firewall)" in ev.message
    again = config_event("changed", before.digest, after, "node-1", 99, "/etc/cni/net.d")
    assert again.id == ev.id  # the same change reported twice (e.g. after a crash) is one event
    gone = config_event("removed", after.digest, parse_directory({}), "node-1", 6, "/etc/cni/net.d")
    assert gone.severity.name == "WARNING"
    assert event_subject(gone) == "tapio.events.cni.cni.config"
