"""The node's CNI configuration (`/etc/cni/net.d`): which plugin is in use, how it names pod
interfaces, and what changed between two readings. Pure: file names and contents in.

Runtimes (containerd, CRI-O) use the first file in lexical order ending in .conf, .conflist or
.json; so does this module. A `.conflist` holds `plugins: [{type: ...}, ...]` (the first is the
main plugin, the rest are chained: portmap, bandwidth, tuning ...); a `.conf` is one plugin.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import attrs

CONFIG_SUFFIXES = (".conf", ".conflist", ".json")

# Main plugin type -> host-side pod interface name patterns (what the plugin creates per pod).
POD_INTERFACES: dict[str, tuple[str, ...]] = {
    "bridge": ("veth*",),
    "ptp": ("veth*",),
    "flannel": ("veth*",),
    "calico": ("cali*",),
    "cilium-cni": ("lxc*",),
    "weave-net": ("vethwepl*",),
    "aws-cni": ("eni*",),
    "azure-vnet": ("azv*",),
    "kube-ovn": ("*_h",),
    "antrea": ("*-*",),
    "macvlan": (),
    "ipvlan": (),
}
# Node-level interfaces a plugin owns (bridges, tunnels, gateways).
PLUGIN_INTERFACES: dict[str, tuple[str, ...]] = {
    "flannel": ("cni0", "flannel.*"),
    "calico": ("vxlan.calico", "tunl0", "wireguard.cali"),
    "cilium-cni": ("cilium_*",),
    "weave-net": ("weave", "vxlan-6784"),
    "antrea": ("antrea-*",),
    "kube-ovn": ("ovn0", "genev_sys_*"),
}


@attrs.frozen
class CniNetwork:
    """One network configuration file."""

    file: str
    name: str
    plugin: str  # the main plugin's type
    chained: tuple[str, ...] = ()  # the other plugins of a conflist
    bridge: str = ""  # bridge plugins: the bridge device
    cni_version: str = ""
    pod_interfaces: tuple[str, ...] = ()


@attrs.frozen
class CniConfig:
    """Everything in the directory: `active` is what the runtime uses (the first valid file)."""

    networks: tuple[CniNetwork, ...] = ()
    problems: tuple[str, ...] = ()  # "file: why" for files that could not be parsed
    digest: str = ""  # of every config file's name and content: changes when anything does

    @property
    def active(self) -> CniNetwork | None:
        return self.networks[0] if self.networks else None

    def role(self, ifname: str) -> str:
        """`pod` for a host-side pod interface of the active plugin, `cni` for its bridges and
        tunnels, "" otherwise (or when no plugin is configured)."""
        net = self.active
        if net is None:
            return ""
        if net.bridge and ifname == net.bridge:
            return "cni"
        if any(fnmatch.fnmatchcase(ifname, p) for p in PLUGIN_INTERFACES.get(net.plugin, ())):
            return "cni"
        if any(fnmatch.fnmatchcase(ifname, p) for p in net.pod_interfaces):
            return "pod"
        return ""


def parse_network(file: str, text: str) -> CniNetwork:
    """One config file; raises ValueError with the reason when it is not a CNI network config."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON ({e.msg} at line {e.lineno})") from e
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    plugins: list[Any]
    if file.endswith(".conflist") or "plugins" in doc:
        raw = doc.get("plugins")
        if not isinstance(raw, list) or not raw:
            raise ValueError("a .conflist needs a non-empty `plugins` list")
        plugins = raw
    else:
        plugins = [doc]
    types = []
    for p in plugins:
        if not isinstance(p, dict) or not isinstance(p.get("type"), str) or not p["type"]:
            raise ValueError("every plugin needs a `type`")
        types.append(p["type"])
    main, first = types[0], plugins[0]
    if main == "multus" and isinstance(first.get("delegates"), list) and first["delegates"]:
        delegate = first["delegates"][0]
        if isinstance(delegate, dict):
            inner = parse_network(file, json.dumps(delegate))
            return attrs.evolve(
                inner, name=str(doc.get("name", inner.name)), chained=("multus", *inner.chained)
            )
    bridge = ""
    if main == "bridge":
        bridge = str(first.get("bridge") or "cni0")
    elif main == "flannel":
        bridge = "cni0"
    return CniNetwork(
        file=file,
        name=str(doc.get("name", "")),
        plugin=main,
        chained=tuple(types[1:]),
        bridge=bridge,
        cni_version=str(doc.get("cniVersion", "")),
        pod_interfaces=POD_INTERFACES.get(main, ("veth*",)),
    )


def parse_directory(files: Mapping[str, str]) -> CniConfig:
    """All config files of a directory (name -> content), in the runtime's order."""
    networks: list[CniNetwork] = []
    problems: list[str] = []
    h = hashlib.sha256()
    for name in sorted(files):
        if not name.endswith(CONFIG_SUFFIXES):
            continue
        text = files[name]
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
        try:
            networks.append(parse_network(name, text))
        except ValueError as e:
            problems.append(f"{name}: {e}")
    return CniConfig(tuple(networks), tuple(problems), h.hexdigest()[:16] if networks or problems else "")


def change_action(previous: CniConfig | None, current: CniConfig) -> str:
    """`detected` (first reading), `changed`, `removed` (no config left), or "" (nothing new)."""
    if previous is None:
        return "detected" if current.digest else ""
    if previous.digest == current.digest:
        return ""
    return "removed" if not current.digest else "changed"
