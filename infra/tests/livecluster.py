"""Runs Tapio's production NATS files on a real 3-node nats-server cluster on localhost.

The Secrets come from infra/k8s/scripts/make-secrets.sh, and are "mounted" the way the manifests say
(volume items, env secretKeyRef); nats.conf is used as written except for host paths, listen
addresses and route hosts, each rewritten an exact number of times; auth.conf is used verbatim.
"""

from __future__ import annotations

import base64
import http.client
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import attrs

from infra.tests import manifests as m
from tapio_common.config import TlsConfig
from tapio_common.nats.embedded import find_nats_server, free_port

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


def replace_exactly(text: str, old: str, new: str, count: int = 1) -> str:
    found = text.count(old)
    assert found == count, (
        f"nats.conf: expected {count} x {old!r}, found {found} (the test must follow the file)"
    )
    return text.replace(old, new)


@attrs.define
class Node:
    name: str
    client_port: int
    http_port: int
    cluster_port: int
    proc: subprocess.Popen[bytes] | None = None


class LocalCluster:
    """Three nats-server processes running infra/k8s/base/nats (nats.conf + auth.conf)."""

    def __init__(self, workdir: Path, secrets: Secrets) -> None:
        self.workdir = workdir
        self.secrets = secrets
        self.sts = m.find(m.base_docs(), "StatefulSet", "nats-jetstream")
        replicas = self.sts["spec"]["replicas"]
        self.nodes = [
            Node(f"nats-jetstream-{i}", free_port(), free_port(), free_port()) for i in range(replicas)
        ]

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{n.client_port}" for n in self.nodes]

    def _config(self, node: Node, certs: Path, conf_dir: Path) -> str:
        text = (m.BASE / "nats" / "nats.conf").read_text(encoding="utf-8")
        text = replace_exactly(text, "/etc/nats-certs/", f"{certs}/", 6)
        text = replace_exactly(
            text, "store_dir: /data/jetstream", f"store_dir: {conf_dir / 'data' / 'jetstream'}"
        )
        text = replace_exactly(text, "pid_file: /var/run/nats/nats.pid", f"pid_file: {conf_dir / 'nats.pid'}")
        text = replace_exactly(text, "listen: 0.0.0.0:4222", f"listen: 127.0.0.1:{node.client_port}")
        text = replace_exactly(text, "http: 0.0.0.0:8222", f"http: 127.0.0.1:{node.http_port}")
        text = replace_exactly(text, "listen: 0.0.0.0:6222", f"listen: 127.0.0.1:{node.cluster_port}")
        for other in self.nodes:
            route = f"nats://{other.name}.{self.sts['spec']['serviceName']}:6222"
            text = replace_exactly(text, route, f"nats://127.0.0.1:{other.cluster_port}")
        return text

    def start(self, timeout: float = 60.0) -> LocalCluster:
        binary = find_nats_server()
        spec = m.pod_spec(self.sts)
        nats = next(c for c in spec["containers"] if c["name"] == "nats")
        certs_mount = m.mounts_of(nats)["/etc/nats-certs"]
        certs_volume = m.volumes_of(self.sts)[certs_mount["name"]]
        certs = mount_secret(
            self.secrets[certs_volume["secret"]["secretName"]], certs_volume, self.workdir / "certs"
        )
        for node in self.nodes:
            conf_dir = self.workdir / node.name
            conf_dir.mkdir(parents=True)
            (conf_dir / "nats.conf").write_text(self._config(node, certs, conf_dir), encoding="utf-8")
            (conf_dir / "auth.conf").write_bytes((m.BASE / "nats" / "auth.conf").read_bytes())
            env = {**os.environ, **env_values(nats, self.secrets, node.name)}
            node.proc = subprocess.Popen(
                [binary, "--config", str(conf_dir / "nats.conf"), "-l", str(conf_dir / "nats.log")],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
        self._wait_healthy(timeout)
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.nodes)
        while pending and time.monotonic() < deadline:
            for node in list(pending):
                assert node.proc is not None
                if node.proc.poll() is not None:
                    err = node.proc.stderr.read().decode(errors="replace") if node.proc.stderr else ""
                    raise AssertionError(
                        f"{node.name} exited ({node.proc.returncode}): {err or self.log_tail(node)}"
                    )
                if healthz(node.http_port) == 200:
                    pending.remove(node)
            time.sleep(0.1)
        if pending:
            self.stop()
            raise AssertionError(f"not healthy within {timeout:.0f}s: {[self.log_tail(n) for n in pending]}")

    def log(self, node: Node) -> str:
        path = self.workdir / node.name / "nats.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, node: Node) -> str:
        log = self.workdir / node.name / "nats.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        return " | ".join(lines[-5:])

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
        for node in self.nodes:
            if node.proc is not None:
                try:
                    node.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait()
                if node.proc.stderr is not None:
                    node.proc.stderr.close()


def healthz(port: int) -> int | None:
    """Status of /healthz (server, JetStream and its meta group), None while unreachable."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()
