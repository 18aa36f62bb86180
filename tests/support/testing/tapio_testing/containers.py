"""Container engine for test JetStream: the localhost/tapio-nats image through testcontainers."""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from tapio_common.errors import EmbeddedServerError
from tapio_common.logging import get_logger
from tapio_common.nats.embedded import free_port
from tapio_testing.engine import Engine, EngineChoice, prepare_testcontainers
from tapio_testing.jetstream import START_TIMEOUT, JetStreamServer, server_conf

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

log = get_logger(__name__)

CLIENT_PORT = 4222
MONITOR_PORT = 8222
STORE = "/data"  # bind-mounted host store dir: JetStream files + the config file
# Labels (besides testcontainers' own org.testcontainers=true) to find what tests left behind.
LABELS = {"io.tapio.test": "jetstream"}


def _docker_errors() -> tuple[type[BaseException], ...]:
    from docker.errors import DockerException  # type: ignore[import-untyped]
    from testcontainers.core.exceptions import ContainerStartException

    # requests' connection errors (engine gone) are OSErrors.
    return (DockerException, ContainerStartException, OSError)


class ContainerJetStream(JetStreamServer):
    """nats-server in a container with fixed host ports (kill/restart keep the URL) and a host store.

    kill() = SIGKILL to the container; restart() = start the same container again: same ports, same
    store (a bind-mounted host directory, removed by stop()).
    """

    engine: ClassVar[Engine] = "container"

    def __init__(
        self,
        choice: EngineChoice,
        *,
        name: str = "tapio-test",
    ) -> None:
        if choice.engine != "container" or not choice.image:
            raise EmbeddedServerError(
                f"container JetStream needs a container engine, got {choice.describe()}"
            )
        self.choice = choice
        self.name = name
        self.host = "127.0.0.1"
        self.port = free_port()
        self.monitor_port = free_port()
        self._tmp: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(
            prefix=f"tapio-nats-{name}-"
        )
        self.store_dir = Path(self._tmp.name)
        self._container: DockerContainer | None = None

    def command(self) -> list[str]:
        args = [
            "-c", f"{STORE}/nats-server.conf", "--jetstream", "--store_dir", STORE,
            "-p", str(CLIENT_PORT), "-m", str(MONITOR_PORT), "--server_name", self.name,
        ]  # fmt: skip
        return args

    def start(self, timeout: float = START_TIMEOUT, *, wait: bool = True) -> ContainerJetStream:
        prepare_testcontainers(self.choice)
        from testcontainers.core.container import DockerContainer

        assert self.choice.image is not None
        (self.store_dir / "nats-server.conf").write_text(server_conf(), encoding="utf-8")
        container = (
            DockerContainer(self.choice.image)
            .with_command(self.command())
            .with_volume_mapping(str(self.store_dir), STORE, "rw")
            .with_name(f"tapio-nats-{self.name}-{secrets.token_hex(4)}")
            .with_kwargs(labels=dict(LABELS))
        )
        # Host ports on loopback only (with_bind_ports would publish them on every interface).
        ports: dict[str, Any] = {
            f"{CLIENT_PORT}/tcp": (self.host, self.port),
            f"{MONITOR_PORT}/tcp": (self.host, self.monitor_port),
        }
        container.ports = ports
        self._container = container
        try:
            container.start()
        except _docker_errors() as e:
            raise EmbeddedServerError(f"cannot start container {self.choice.image}: {e}") from e
        log.info(
            "JetStream container started",
            name=self.name,
            container=container.get_wrapped_container().short_id,
            url=self.url,
        )
        if wait:
            self.wait_healthy(timeout)
        return self

    def kill(self) -> None:
        if self._container is None:
            return
        wrapped = self._container.get_wrapped_container()
        try:
            wrapped.reload()
            if wrapped.status == "running":
                wrapped.kill(signal="SIGKILL")
                wrapped.wait(timeout=30)
        except _docker_errors() as e:
            raise EmbeddedServerError(f"cannot kill container nats-server {self.name}: {e}") from e
        log.info("JetStream container killed", name=self.name)

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        if self._container is None:
            raise EmbeddedServerError(f"container nats-server {self.name} was never started")
        self.kill()
        try:
            self._container.get_wrapped_container().start()
        except _docker_errors() as e:
            raise EmbeddedServerError(f"cannot restart container nats-server {self.name}: {e}") from e
        self.wait_healthy(timeout)
        log.info("JetStream container restarted", name=self.name, url=self.url)

    def stop(self) -> None:
        container, self._container = self._container, None
        try:
            if container is not None:
                try:
                    container.get_wrapped_container().stop(timeout=10)
                    container.stop(force=True, delete_volume=True)
                except _docker_errors() as e:
                    raise EmbeddedServerError(f"cannot remove container nats-server {self.name}: {e}") from e
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    def is_running(self) -> bool:
        if self._container is None:
            return False
        wrapped = self._container.get_wrapped_container()
        try:
            wrapped.reload()
        except _docker_errors():
            return False
        return bool(wrapped.status == "running")

    def failure_detail(self) -> str:
        if self._container is None:
            return "container not created"
        try:
            logs = self._container.get_wrapped_container().logs(tail=5)
        except _docker_errors() as e:
            return f"no logs ({e})"
        text = logs.decode(errors="replace").strip() if isinstance(logs, bytes) else str(logs)
        return " | ".join(text.splitlines())
