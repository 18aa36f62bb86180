"""Random, realistic Kubernetes names: clusters, nodes, namespaces, apps, pods, ids, images."""

from __future__ import annotations

import random

# k8s uses this alphabet for generated name suffixes (no vowels, no confusable characters).
K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
HEX = "0123456789abcdef"

CLUSTERS = (
    "prod-eu-1",
    "prod-us-2",
    "kind-local",
    "staging-ap-1",
    "prod-eu-west-3",
    "dev-shared",
    "gke-prod-1",
    "aks-retail",
    "eks-payments-prod",
    "k3s-edge-7",
    "qa-cluster",
    "ops-east",
)
NAMESPACES = (
    "team-a",
    "team-b",
    "shop",
    "data",
    "ml",
    "platform",
    "edge",
    "prod",
    "staging",
    "payments",
    "checkout",
    "analytics",
    "infra",
    "search",
    "identity",
    "media",
    "billing",
    "default",
    "core",
    "frontend",
    "backend",
    "batch",
    "observability",
    "growth",
)
APPS = (
    "payments",
    "worker",
    "inventory",
    "checkout",
    "media",
    "ledger",
    "auth",
    "queue",
    "web",
    "api",
    "orders",
    "gateway",
    "search",
    "billing",
    "cart",
    "catalog",
    "notifier",
    "recommender",
    "frontend",
    "session-cache",
    "pricing",
    "shipping",
    "reviews",
    "accounts",
    "mailer",
    "thumbnailer",
    "indexer",
    "scheduler",
    "reporting",
    "fraud-check",
    "ratelimiter",
    "profile",
    "feed",
    "uploader",
    "router",
)
TIERS = ("frontend", "backend", "cache", "worker")
RUNTIMES = {"containerd": "containerd://", "crio": "cri-o://", "docker": "docker://"}
INTERFACES = ("eth0", "eth0", "eth0", "ens5", "ens4", "enp1s0", "bond0")
REGISTRIES = (
    "registry.local",
    "ghcr.io/acme",
    "quay.io/shopco",
    "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
)
COMMANDS = (
    ("sh", "/bin/sh"),
    ("bash", "/bin/bash"),
    ("python3", "/usr/bin/python3"),
    ("curl", "/usr/bin/curl"),
    ("java", "/usr/bin/java"),
    ("node", "/usr/local/bin/node"),
    ("nginx", "/usr/sbin/nginx"),
    ("ps", "/bin/ps"),
    ("cat", "/bin/cat"),
    ("healthcheck", "/app/healthcheck"),
)
# Host units that are not node-critical: their failure alone is never a node_failure.
PLAIN_UNITS = ("sshd", "cron", "nginx", "chronyd", "rsyslog", "node-exporter", "systemd-journald", "auditd")
# Host units whose failure breaks the pods on the node without taking the node down.
POD_BREAKING_UNITS = ("systemd-resolved", "kube-proxy", "systemd-networkd", "iscsid", "flanneld")
DPORTS = (443, 5432, 6379, 8080, 9092, 3306, 27017, 8443, 9200, 53)


def uuid_like(rng: random.Random) -> str:
    """A UUID-shaped random id (8-4-4-4-12 hex)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def suffix(rng: random.Random, n: int = 5) -> str:
    return "".join(rng.choice(K8S_ALPHABET) for _ in range(n))


def template_hash(rng: random.Random) -> str:
    """A ReplicaSet pod-template-hash: hex (7-8) like older tooling or k8s-safe alphanumerics (9-10)."""
    if rng.random() < 0.5:
        return "".join(rng.choice(HEX) for _ in range(rng.choice((7, 8, 8))))
    return "".join(rng.choice(K8S_ALPHABET) for _ in range(rng.choice((9, 10))))


def container_id(rng: random.Random, runtime: str) -> str:
    return RUNTIMES[runtime] + f"{rng.getrandbits(256):064x}"


def node_names(rng: random.Random, count: int) -> list[str]:
    """`count` distinct node names of one style (a cluster's nodes look alike)."""
    style = rng.randrange(6)
    names: list[str] = []
    while len(names) < count:
        i = len(names)
        if style == 0:
            name = f"node-{rng.randrange(100, 1000)}"
        elif style == 1:
            name = f"ip-10-{rng.randrange(0, 4)}-{rng.randrange(0, 256)}-{rng.randrange(2, 255)}.ec2.internal"
        elif style == 2:
            pool = "".join(rng.choice(HEX) for _ in range(8))
            name = f"gke-prod-default-pool-{pool}-{suffix(rng, 4)}"
        elif style == 3:
            name = f"aks-nodepool1-{rng.randrange(10**7, 10**8)}-vmss{i:06d}"
        elif style == 4:
            name = f"worker-{i + 1}" if rng.random() < 0.5 else f"k8s-worker-{rng.randrange(1, 60):02d}"
        else:
            name = "kind-worker" if i == 0 else f"kind-worker{i + 1}"
        if name not in names:
            names.append(name)
    return names


def image(rng: random.Random, app: str) -> str:
    tag = rng.choice(
        (
            f"v{rng.randrange(1, 5)}",
            f"1.{rng.randrange(0, 30)}.{rng.randrange(0, 10)}",
            f"2025.{rng.randrange(1, 13)}.{rng.randrange(1, 29)}",
        )
    )
    return f"{rng.choice(REGISTRIES)}/{app}:{tag}"


def next_image(rng: random.Random, current: str) -> str:
    """A different tag of the same image repository."""
    repo = current.rsplit(":", 1)[0]
    while True:
        tag = rng.choice(
            (
                f"v{rng.randrange(2, 9)}",
                f"1.{rng.randrange(0, 40)}.{rng.randrange(0, 10)}",
                f"sha-{rng.getrandbits(28):07x}",
            )
        )
        candidate = f"{repo}:{tag}"
        if candidate != current:
            return candidate


def pod_ip(rng: random.Random) -> str:
    return f"10.{rng.randrange(1, 250)}.{rng.randrange(0, 256)}.{rng.randrange(2, 255)}"


def address_of(uid: str, service: bool = False) -> str:
    """A pod IP (10.250-253.x.y) or Service cluster IP (10.254.x.y) derived from an object's uid.

    Derived, not drawn, so adding addresses changes no random draw of a scenario; the ranges are
    disjoint from `pod_ip`'s (second octet 1-249), so a random peer never hits a known object.
    """
    h = int(uid.replace("-", "")[:8], 16)
    second = 254 if service else 250 + (h >> 24) % 4
    return f"10.{second}.{(h >> 8) & 0xFF}.{max(2, h & 0xFF) % 255}"
