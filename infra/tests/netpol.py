"""Kubernetes NetworkPolicy semantics, enough to say which pod may reach which port of which pod.

Fed by the rendered manifests (infra/tests/test_network_policies.py). Implements the rules of the
networking.k8s.io/v1 API: a pod selected by a policy of a type (Ingress/Egress) is isolated for that
direction and then accepts only what some selecting policy's rule allows; a connection needs the
source's egress and the destination's ingress; hostNetwork pods are not subject to policies and
are seen by others as their node's address; peers are podSelector (the policy's namespace),
namespaceSelector, both, or ipBlock; ports by number and protocol (TCP by default).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

Doc = dict[str, Any]


@attrs.frozen
class Endpoint:
    """A pod (namespace + labels) or an address outside the cluster's pods (namespace None)."""

    name: str
    namespace: str | None
    labels: Mapping[str, str] = attrs.field(factory=dict)
    ip: str = "10.244.0.10"
    host_network: bool = False


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector: matchLabels and matchExpressions all hold; an empty selector selects all."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_matches(peer: Doc, policy_ns: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        if other.namespace is not None and not other.host_network:
            return False  # pod-to-pod traffic is judged by selectors (the usual CNI behaviour)
        block = peer["ipBlock"]
        addr = ipaddress.ip_address(other.ip)
        net = ipaddress.ip_network(block["cidr"])
        if addr.version != net.version or addr not in net:
            return False
        return not any(
            addr in ipaddress.ip_network(e)
            for e in block.get("except", [])
            if ipaddress.ip_network(e).version == addr.version
        )
    if other.namespace is None or other.host_network:
        return False
    ns_sel = peer.get("namespaceSelector")
    pod_sel = peer.get("podSelector")
    if ns_sel is None:
        in_ns = other.namespace == policy_ns
    else:
        in_ns = selects(ns_sel, {"kubernetes.io/metadata.name": other.namespace})
    return in_ns and (pod_sel is None or selects(pod_sel, other.labels))


def _port_matches(ports: list[Doc] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        if "port" not in p:
            return True
        lo = int(p["port"])
        hi = int(p["endPort"]) if "endPort" in p else lo
        if lo <= port <= hi:
            return True
    return False


def _allowed(
    policies: Iterable[Doc], kind: str, pod: Endpoint, other: Endpoint, port: int, protocol: str
) -> bool:
    """Does `pod` allow the `kind` ("Ingress"/"Egress") side of a connection with `other`?"""
    if pod.namespace is None or pod.host_network:
        return True
    selecting = [
        p
        for p in policies
        if p["metadata"].get("namespace", "tapio") == pod.namespace
        and selects(p["spec"].get("podSelector"), pod.labels)
        and kind in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not selecting:
        return True
    rules_key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    for p in selecting:
        ns = p["metadata"].get("namespace", "tapio")
        for rule in p["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(_peer_matches(peer, ns, other) for peer in peers)) and _port_matches(
                rule.get("ports"), port, protocol
            ):
                return True
    return False


def may_connect(policies: list[Doc], src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
    return _allowed(policies, "Egress", src, dst, port, protocol) and _allowed(
        policies, "Ingress", dst, src, port, protocol
    )
