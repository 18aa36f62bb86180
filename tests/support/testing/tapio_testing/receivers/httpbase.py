"""A small threaded HTTP/1.1 server (keep-alive) that can be stopped and started again on the same
port with its state kept, as a receiver that goes down and comes back."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import msgspec

from tapio_common.nats.embedded import free_port


class Reply:
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body if isinstance(body, bytes) else msgspec.json.encode(body)
        self.headers = headers or {"Content-Type": "application/json"}


class Receiver:
    """Subclasses implement `handle(method, path, headers, body) -> Reply`; state lives on self."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port()
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._inflight = 0
        self._closing = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        raise NotImplementedError

    def start(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with receiver.lock:
                    receiver._connections.add(self.connection)

            def finish(self) -> None:
                with receiver.lock:
                    receiver._connections.discard(self.connection)
                with contextlib.suppress(OSError):  # cut by stop()
                    super().finish()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    if receiver._closing:  # stopping: the request is not taken (connection cut)
                        self.close_connection = True
                        return
                    receiver._inflight += 1
                try:  # in flight until answered: stop() never cuts a reply to a request it took
                    reply = receiver.handle(self.command, self.path, headers, body)
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    self.wfile.flush()
                finally:
                    with receiver.lock:
                        receiver._inflight -= 1

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, format: str, *args: object) -> None:
                return None

        for attempt in range(50):  # the port of a stopped receiver may linger briefly
            try:
                self._server = _Server((self.host, self.port), Handler)
                break
            except OSError:
                if attempt == 49:
                    raise
                time.sleep(0.1)
        assert self._server is not None
        self._closing = False
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name=type(self).__name__
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """A server going down: takes no new request, lets the ones being handled answer (what it
        took is answered), then cuts every connection. The state stays for a later start()."""
        with self.lock:
            self._closing = True
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self.lock:
                if self._inflight == 0:
                    break
            time.sleep(0.005)
        with self.lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # closed already
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection cut by stop() (or by the client) is expected here, not worth a traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)
