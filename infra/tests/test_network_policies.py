"""The rendered NetworkPolicies let through exactly the design's flows (which pod may reach which port).

Pods are those the manifests render (kubectl kustomize of base), plus what lives beside them:
NACK, Prometheus in namespace monitoring, cluster DNS, a pod of another namespace, the API
server and a SIEM receiver outside the cluster. Semantics: infra/tests/netpol.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from infra.tests.netpol import Endpoint, may_connect
from tapio_testing import manifests as m

pytestmark = pytest.mark.skipif(
    m.kubectl() is None, reason="kubectl renders the kustomization (make setup installs it)"
)

WORKLOAD_KINDS = {"Deployment", "DaemonSet", "StatefulSet"}


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return m.render(m.BASE)


@pytest.fixture(scope="module")
def policies(rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = [d for d in rendered if d["kind"] == "NetworkPolicy"]
    assert found, "base renders no NetworkPolicy"
    return found


@pytest.fixture(scope="module")
def pods(rendered: list[dict[str, Any]]) -> dict[str, Endpoint]:
    out = {
        d["metadata"]["name"]: Endpoint(
            d["metadata"]["name"],
            d["metadata"]["namespace"],
            d["spec"]["template"]["metadata"]["labels"],
            host_network=bool(m.pod_spec(d).get("hostNetwork")),
            ip="192.168.49.2" if m.pod_spec(d).get("hostNetwork") else "10.244.1.5",
        )
        for d in rendered
        if d["kind"] in WORKLOAD_KINDS
    }
    out["nack"] = Endpoint("nack", "tapio", {"app.kubernetes.io/name": "nack"})
    out["prometheus"] = Endpoint("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"})
    out["kube-dns"] = Endpoint("kube-dns", "kube-system", {"k8s-app": "kube-dns"})
    out["stranger"] = Endpoint("stranger", "default", {"app": "curl"})
    out["api-server"] = Endpoint("api-server", None, ip="172.18.0.2")
    out["splunk"] = Endpoint("splunk", None, ip="203.0.113.20")
    return out


POD_WORKLOADS = [
    "tapio-k8s-collector", "tapio-systemd-collector", "tapio-ebpf-collector",
    "tapio-correlator", "tapio-pipeline", "tapio-siem-exporter",
]  # fmt: skip
NATS = "nats-jetstream"

ALLOWED = (
    [(w, NATS, 4222, "TCP") for w in POD_WORKLOADS]
    + [(w, "kube-dns", 53, "UDP") for w in [*POD_WORKLOADS, NATS, "nack"]]
    + [("prometheus", w, 7777, "TCP") for w in [*POD_WORKLOADS, NATS]]
    + [
        (NATS, NATS, 6222, "TCP"),
        ("nack", NATS, 4222, "TCP"),
        ("nack", "api-server", 6443, "TCP"),
        ("tapio-k8s-collector", "api-server", 6443, "TCP"),
        ("tapio-k8s-collector", "api-server", 443, "TCP"),
        ("tapio-siem-exporter", "splunk", 8088, "TCP"),
        ("tapio-siem-exporter", "splunk", 6514, "TCP"),
        ("tapio-siem-exporter", "splunk", 514, "UDP"),
    ]
)

DENIED = (
    [(w, NATS, 6222, "TCP") for w in POD_WORKLOADS]  # the cluster port is for the servers
    + [(w, NATS, 8222, "TCP") for w in POD_WORKLOADS]  # monitoring: no pod
    + [(w, "api-server", 6443, "TCP") for w in POD_WORKLOADS if w != "tapio-k8s-collector"]
    # (the k8s collector's API server grant is any address on 443/6443: the API server's address
    # is the cluster's; an overlay can narrow it to the control plane's CIDR)
    + [
        (w, "splunk", 443, "TCP")
        for w in POD_WORKLOADS
        if w not in ("tapio-siem-exporter", "tapio-k8s-collector")
    ]
    + [(w, "splunk", 8088, "TCP") for w in POD_WORKLOADS if w != "tapio-siem-exporter"]
    + [(w, "tapio-correlator", 7777, "TCP") for w in POD_WORKLOADS if w != "tapio-correlator"]
    + [
        ("stranger", NATS, 4222, "TCP"),  # another namespace
        ("stranger", "tapio-correlator", 7777, "TCP"),
        ("prometheus", NATS, 8222, "TCP"),
        ("prometheus", NATS, 4222, "TCP"),
        ("tapio-correlator", "stranger", 80, "TCP"),
        ("tapio-siem-exporter", "splunk", 22, "TCP"),
        (NATS, "splunk", 443, "TCP"),
        (NATS, "tapio-correlator", 7777, "TCP"),
    ]
)


@pytest.mark.parametrize(("src", "dst", "port", "proto"), ALLOWED)
def test_design_flow_is_allowed(
    policies: list[dict[str, Any]], pods: dict[str, Endpoint], src: str, dst: str, port: int, proto: str
) -> None:
    assert may_connect(policies, pods[src], pods[dst], port, proto), (
        f"{src} -> {dst}:{port}/{proto} must be allowed"
    )


@pytest.mark.parametrize(("src", "dst", "port", "proto"), DENIED)
def test_anything_else_is_denied(
    policies: list[dict[str, Any]], pods: dict[str, Endpoint], src: str, dst: str, port: int, proto: str
) -> None:
    assert not may_connect(policies, pods[src], pods[dst], port, proto), (
        f"{src} -> {dst}:{port}/{proto} must be denied"
    )


def test_every_pod_of_the_namespace_is_isolated_both_ways(policies: list[dict[str, Any]]) -> None:
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress") and not p["spec"].get("egress")
    ]
    assert len(deny) == 1
    assert sorted(deny[0]["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert deny[0]["metadata"]["namespace"] == "tapio"


def test_no_service_publishes_the_monitoring_port(rendered: list[dict[str, Any]]) -> None:
    for svc in (d for d in rendered if d["kind"] == "Service"):
        ports = {p["port"] for p in svc["spec"]["ports"]} | {
            p.get("targetPort") for p in svc["spec"]["ports"]
        }
        assert 8222 not in ports, svc["metadata"]["name"]
        assert "monitor" not in ports, svc["metadata"]["name"]


def test_host_network_collectors_are_named_in_the_policy_file() -> None:
    """hostNetwork pods escape NetworkPolicy by Kubernetes' rules; the policy file says so, and which."""
    host = [
        n
        for n, d in ((d["metadata"]["name"], d) for d in m.base_docs() if d["kind"] == "DaemonSet")
        if m.pod_spec(d).get("hostNetwork")
    ]
    assert host == ["tapio-cni-collector"]
    text = (m.BASE / "tapio" / "networkpolicies.yaml").read_text(encoding="utf-8")
    assert "hostNetwork pods (the CNI collector)" in text


def test_helm_installed_nats_gets_the_same_flows() -> None:
    """overlays/external-nats (Terraform's Helm NATS, pods app.kubernetes.io/name=nats) renders the same policies."""
    docs = m.render(m.K8S / "overlays" / "external-nats")
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    helm_nats = Endpoint("tapio-nats-0", "tapio", {"app.kubernetes.io/name": "nats"})
    correlator = next(
        Endpoint(d["metadata"]["name"], "tapio", d["spec"]["template"]["metadata"]["labels"])
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "tapio-correlator"
    )
    assert may_connect(policies, correlator, helm_nats, 4222)
    assert may_connect(policies, helm_nats, helm_nats, 6222)
    assert not may_connect(policies, correlator, helm_nats, 6222)
