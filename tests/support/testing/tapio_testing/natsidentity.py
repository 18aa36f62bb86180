"""Who connects to the production NATS cluster of the tests, and how: the Secrets make-secrets.sh
writes, "mounted" the way the manifests say (volume items, env secretKeyRef), and the identity each
workload or client connects with (its own certificate, mapped to its NATS user by verify_and_map).

Fed by infra/k8s (scripts/make-secrets.sh, the base manifests); used by natscluster (the servers'
certificates) and by every suite that connects as a Tapio workload (infra checks, e2e).
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import attrs

from tapio_common.config import NatsConfig, TlsConfig
from tapio_testing import manifests as m

SCRIPT = m.K8S / "scripts" / "make-secrets.sh"
Secrets = dict[str, dict[str, bytes]]


def make_secrets(out: Path, *args: str) -> Secrets:
    """Runs make-secrets.sh and returns the Secrets it wrote (name -> key -> bytes)."""
    res = subprocess.run(
        ["bash", str(SCRIPT), "--out", str(out), *args], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, f"make-secrets.sh failed: {res.stderr.strip()}"
    return load_secrets(out / "secrets.yaml")


def load_secrets(path: Path) -> Secrets:
    return {
        doc["metadata"]["name"]: {k: base64.b64decode(v) for k, v in doc["data"].items()}
        for doc in m.load_docs(path)
    }


def mount_secret(secret: dict[str, bytes], volume: dict[str, Any], dest: Path) -> Path:
    """Writes a secret volume's items into dest, as the kubelet would."""
    dest.mkdir(parents=True, exist_ok=True)
    items = volume["secret"].get("items") or [{"key": k, "path": k} for k in secret]
    for item in items:
        (dest / item["path"]).write_bytes(secret[item["key"]])
    return dest


def env_values(container: dict[str, Any], secrets: Secrets, pod_name: str) -> dict[str, str]:
    """A container's environment with secretKeyRef and metadata.name resolved."""
    values: dict[str, str] = {}
    for e in container.get("env", []):
        if "value" in e:
            values[e["name"]] = e["value"]
        elif "secretKeyRef" in e["valueFrom"]:
            ref = e["valueFrom"]["secretKeyRef"]
            values[e["name"]] = secrets[ref["name"]][ref["key"]].decode()
        elif e["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.name":
            values[e["name"]] = pod_name
    return values


@attrs.frozen
class Identity:
    """How a client connects: the NATS user its certificate maps to (verify_and_map), its TLS
    client files, and a password only where a test sends one (the servers must refuse it)."""

    user: str
    tls: TlsConfig
    password: str | None = None

    def nats_config(self, urls: tuple[str, ...] | list[str]) -> NatsConfig:
        """The NatsConfig a Tapio component builds from the environment of env()."""
        return NatsConfig(urls=tuple(urls), identity=self.user, tls=self.tls, password=self.password)

    def env(self, urls: tuple[str, ...] | list[str]) -> dict[str, str]:
        """The environment a component process connects with as this identity (as its manifest sets)."""
        cert, key, ca = self.tls.cert, self.tls.key, self.tls.ca
        if not (cert and key and ca):
            raise ValueError(f"{self.user}: a component connects with a certificate, key and CA")
        return {
            "NATS_URL": ",".join(urls),
            "NATS_IDENTITY": self.user,
            "NATS_TLS_CERT": cert,
            "NATS_TLS_KEY": key,
            "NATS_TLS_CA": ca,
        }


def workload_env(name: str, secrets: Secrets, root: Path) -> dict[str, str]:
    """A workload container's environment, its Secret volume written under root and the
    /etc/nats-creds paths pointing there."""
    kind = m.WORKLOADS[name][0]
    doc = m.find(m.base_docs(), kind, name)
    (container,) = m.pod_spec(doc)["containers"]
    env = env_values(container, secrets, name)
    mount = m.mounts_of(container)["/etc/nats-creds"]
    volume = m.volumes_of(doc)[mount["name"]]
    local = mount_secret(secrets[volume["secret"]["secretName"]], volume, root / name)
    return {k: v.replace("/etc/nats-creds", str(local)) for k, v in env.items()}


def workload_identity(name: str, secrets: Secrets, root: Path) -> Identity:
    """A workload's identity as its manifest says: its own Secret's certificate and NATS_IDENTITY,
    no NATS_USER or NATS_PASSWORD (the certificate is the identity)."""
    env = workload_env(name, secrets, root)
    assert not {"NATS_USER", "NATS_PASSWORD"} & set(env), f"{name} must not send a user or password"
    tls = TlsConfig(cert=env["NATS_TLS_CERT"], key=env["NATS_TLS_KEY"], ca=env["NATS_TLS_CA"])
    return Identity(env["NATS_IDENTITY"], tls)


def client_identity(secrets: Secrets, client: str, user: str, root: Path) -> Identity:
    """A client of make-secrets.sh that is no workload (nack, readers, admin): Secret
    nats-client-<client>, its files written under root."""
    creds = secrets[f"nats-client-{client}"]
    root.mkdir(parents=True, exist_ok=True)
    for key in ("ca.crt", "tls.crt", "tls.key"):
        (root / key).write_bytes(creds[key])
    return Identity(
        user, TlsConfig(cert=str(root / "tls.crt"), key=str(root / "tls.key"), ca=str(root / "ca.crt"))
    )


CLIENTS = {"nack": "nack", "readers": "tapio-consumers", "admin": "tapio-admin"}  # client id -> user
