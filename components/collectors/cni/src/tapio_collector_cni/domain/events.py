"""Events of the CNI collector (attrs models of tapio.events.v1): loss and error findings of an
interface direction, and CNI configuration changes. Pure; ids are deterministic.

A finding's id is a hash of node, interface (name and ifindex), direction, action and the
window's end, so a re-emit after a restart is dropped by JetStream dedup and the runtime's window.
"""

from __future__ import annotations

import hashlib

import attrs

from tapio_collector_cni.domain.cniconf import CniConfig
from tapio_collector_cni.domain.thresholds import PACKET_LOSS, Finding
from tapio_collector_cni.domain.wire import LinkInfo
from tapio_common.model import Context, Event, NetworkEvent, Severity, Source

EVENT_TYPE = "interface"
CONFIG_TYPE = "config"
SEVERE_RATIO = 0.10


def stable_id(*parts: object) -> str:
    """A UUID-shaped id (version 8, RFC 9562 custom) hashed from `parts`."""
    digest = bytearray(hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).digest())
    digest[6] = (digest[6] & 0x0F) | 0x80
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@attrs.frozen
class Peer:
    """What sits on the other end of a veth: a process in the peer's network namespace and the
    container and pod its cgroup names (empty strings when unknown)."""

    netns: str  # e.g. net:[4026532512]
    pid: int = 0
    comm: str = ""
    container_id: str = ""  # Kubernetes form, e.g. containerd://<64 hex>
    pod_uid: str = ""


def finding_event(
    f: Finding,
    node: str,
    link: LinkInfo | None,
    peer: Peer | None = None,
    cluster: str = "",
    plugin: str = "",
    role: str = "",
) -> Event:
    """`plugin` and `role` (pod | cni, from the node's CNI configuration) go into attributes."""
    w, d = f.window, f.delta
    total = d.offered if f.action == PACKET_LOSS else d.packets + d.errors
    verb = "dropped" if f.action == PACKET_LOSS else "had errors on"
    what = "received" if f.direction == "ingress" else "sent"
    message = f"{w.name} {verb} {f.count} of {total} {what} packets ({f.ratio:.1%}) in {w.seconds:.0f} s"
    if peer is not None and peer.pod_uid:
        message += f" (peer: pod {peer.pod_uid})"
    attributes = {"ifindex": str(w.index)}
    if link is not None and link.kind:
        attributes["kind"] = link.kind
    if f.action == PACKET_LOSS:
        attributes["device_drops"] = str(d.device_drops)
        attributes["qdisc_drops"] = str(d.qdisc_drops)
    if plugin:
        attributes["cni_plugin"] = plugin
    if role:
        attributes["role"] = role
    ctx = Context(cluster=cluster, node=node)
    if peer is not None:
        attributes["peer_netns"] = peer.netns
        if link is not None and link.peer_index:
            attributes["peer_ifindex"] = str(link.peer_index)
        ctx = attrs.evolve(
            ctx, pid=peer.pid, comm=peer.comm, container_id=peer.container_id, pod_uid=peer.pod_uid
        )
    return Event(
        id=stable_id("cni", node, w.name, w.index, f.direction, f.action, w.time_ns),
        time=w.time_ns,
        source=Source.CNI,
        type=EVENT_TYPE,
        action=f.action,
        severity=Severity.ERROR if f.ratio >= SEVERE_RATIO else Severity.WARNING,
        message=message,
        context=ctx,
        network=NetworkEvent(
            interface=w.name,
            direction=f.direction,
            packets=total,
            bytes=d.bytes,
            drops=d.drops,
            errors=d.errors,
            loss_ratio=round(f.ratio, 6),
            window_seconds=round(w.seconds, 3),
            peer_pod=peer.pod_uid if peer is not None else "",
        ),
        attributes=attributes,
    )


def config_event(
    action: str,
    previous_digest: str,
    current: CniConfig,
    node: str,
    time_ns: int,
    directory: str,
    cluster: str = "",
) -> Event:
    """A CNI configuration `detected` / `changed` / `removed` in `directory`. Subject:
    `tapio.events.cni.{network name}.config`."""
    net = current.active
    attributes = {"directory": directory, "digest": current.digest}
    if previous_digest:
        attributes["previous_digest"] = previous_digest
    if net is not None:
        attributes.update(
            file=net.file,
            plugin=net.plugin,
            network=net.name,
            chained=",".join(net.chained),
            pod_interfaces=",".join(net.pod_interfaces),
        )
        if net.bridge:
            attributes["bridge"] = net.bridge
        if net.cni_version:
            attributes["cni_version"] = net.cni_version
    if current.problems:
        attributes["problems"] = "; ".join(current.problems)
    if action == "removed" or net is None:
        message = f"no usable CNI network configuration left in {directory}"
        severity = Severity.WARNING
    else:
        chain = f" (chained: {', '.join(net.chained)})" if net.chained else ""
        message = f"CNI network {net.name or net.file} uses plugin {net.plugin}{chain}, from {net.file}"
        severity = Severity.WARNING if current.problems else Severity.INFO
    return Event(
        id=stable_id("cni-config", node, directory, action, previous_digest, current.digest),
        time=time_ns,
        source=Source.CNI,
        type=CONFIG_TYPE,
        action=action,
        severity=severity,
        message=message,
        context=Context(cluster=cluster, node=node),
        network=NetworkEvent(interface=(net.name if net is not None else "") or "cni", direction="config"),
        attributes=attributes,
    )
