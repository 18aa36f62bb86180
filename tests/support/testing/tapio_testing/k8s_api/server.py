"""A Kubernetes API server for tests, speaking the real protocol over HTTP/1.1 to the official
client: list (resourceVersion, limit/continue from a consistent snapshot, fieldSelector), GET,
watch as a chunked stream of JSON lines with BOOKMARKs and `410 Gone` (ERROR event) when the
resourceVersion is compacted, POST/PUT (Lease) with `409 Conflict` on a stale resourceVersion,
DELETE, and bearer-token auth. Faults for tests: `break_watches()` cuts every open watch mid-stream,
`compact()` makes resumes 410, `stop()`/`start()` make it unreachable and back on the same port."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tapio_testing.k8s_api.store import API_VERSIONS, RESOURCES, ApiError, Store, parse_selector

_PATH = re.compile(
    r"^(?P<prefix>/api/v1|/apis/[a-z0-9.]+/v1)"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<resource>[a-z]+)(?:/(?P<name>[^/]+))?$"
)


class K8sApiServer:
    """`with K8sApiServer(token="t") as api: api.kubeconfig(path); api.store.apply(pod)`."""

    def __init__(self, *, token: str = "", port: int = 0, bookmark_interval: float = 1.0) -> None:
        self.store = Store()
        self.token = token
        self.bookmark_interval = bookmark_interval
        self.requests: list[tuple[str, str]] = []  # (method, path?query) of every request served
        self.request_times: list[float] = []  # time.monotonic() of each, same order
        # resource -> generator of watch stream chunks after a resourceVersion (benchmarks: a
        # synthetic stream as fast as the client reads, instead of the event log)
        self.storms: dict[str, Callable[[int], Iterator[bytes]]] = {}
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._watch_socks: set[socket.socket] = set()
        self._generation = 0  # bumped by break_watches(): open watches end abruptly

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> K8sApiServer:
        handler = _make_handler(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._httpd.daemon_threads = True
        self._port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="k8s-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops listening and cuts open watches (the port is kept for start())."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        self.break_watches()

    def break_watches(self) -> None:
        """Every open watch stream ends mid-stream (no terminating chunk), as a dropped connection."""
        with self.store.lock:
            self._generation += 1
            socks = list(self._watch_socks)
            self.store.lock.notify_all()
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def open_watches(self) -> int:
        with self.store.lock:
            return len(self._watch_socks)

    def kubeconfig(self, path: Path, *, token: str | None = None, namespace: str = "default") -> Path:
        """Writes a kubeconfig pointing at this server with a bearer token (default: the server's)."""
        user: dict[str, Any] = {"token": self.token if token is None else token}
        doc = {
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.url}}],
            "users": [{"name": "test", "user": user}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test", "namespace": namespace}}],
        }  # fmt: skip
        path.write_text(json.dumps(doc, indent=1))
        return path

    def __enter__(self) -> K8sApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _make_handler(api: K8sApiServer) -> type[BaseHTTPRequestHandler]:
    store = api.store

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return None

        def _route(self) -> tuple[str, str, str, str, dict[str, str]]:
            parts = urlsplit(self.path)
            m = _PATH.match(parts.path)
            if not m or m["resource"] not in RESOURCES or RESOURCES[m["resource"]][0] != m["prefix"]:
                raise ApiError(
                    404, "NotFound", f"the server could not find the requested resource ({parts.path})"
                )
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            return m["resource"], m["ns"] or "", m["name"] or "", m["prefix"], query

        def _auth(self) -> None:
            if api.token and self.headers.get("Authorization") != f"Bearer {api.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")

        def _send(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self, method: str) -> None:
            api.requests.append((method, self.path))
            api.request_times.append(time.monotonic())
            try:
                self._auth()
                resource, ns, name, prefix, query = self._route()
                body = self._body() if method in ("POST", "PUT") else {}
                if method == "GET" and name:
                    self._send(200, store.get(resource, ns, name).data)
                elif method == "GET" and query.get("watch") in ("true", "1"):
                    self._watch(resource, ns, prefix, query)
                elif method == "GET":
                    self._list(resource, ns, prefix, query)
                elif method == "POST":
                    self._send(201, _encode(self._create(resource, ns, body)))
                elif method == "PUT":
                    self._send(200, _encode(self._replace(resource, ns, name, body)))
                elif method == "DELETE":
                    self._send(200, _encode(store.delete(resource, ns, name)))
            except ApiError as e:
                self._send(e.code, e.status())
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _body(self) -> dict[str, Any]:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                obj = json.loads(data)
            except ValueError as e:
                raise ApiError(400, "BadRequest", f"malformed body: {e}") from e
            if not isinstance(obj, dict):
                raise ApiError(400, "BadRequest", "the body must be an object")
            return obj

        def _create(self, resource: str, ns: str, obj: dict[str, Any]) -> dict[str, Any]:
            meta = obj.setdefault("metadata", {})
            meta["namespace"] = ns or meta.get("namespace", "")
            with store.lock:
                if (meta["namespace"], meta.get("name", "")) in store.objects[resource]:
                    raise ApiError(409, "AlreadyExists", f'{resource} "{meta.get("name")}" already exists')
                meta.pop("resourceVersion", None)
                return store.apply(obj, resource)

        def _replace(self, resource: str, ns: str, name: str, obj: dict[str, Any]) -> dict[str, Any]:
            meta = obj.setdefault("metadata", {})
            with store.lock:
                current = store.get(resource, ns, name)
                if meta.get("resourceVersion") != current.obj["metadata"]["resourceVersion"]:
                    raise ApiError(
                        409, "Conflict",
                        f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
                        "please apply your changes to the latest version and try again",
                    )  # fmt: skip
                meta["namespace"], meta["name"] = ns, name
                meta["uid"] = current.obj["metadata"]["uid"]
                meta["creationTimestamp"] = current.obj["metadata"]["creationTimestamp"]
                return store.apply(obj, resource)

        def _list(self, resource: str, ns: str, prefix: str, q: dict[str, str]) -> None:
            selector = parse_selector(q.get("fieldSelector", ""))
            rv, page, token, remaining = store.list(
                resource, ns, selector, int(q.get("limit") or 0), q.get("continue", "")
            )
            kind = RESOURCES[resource][1]
            meta: dict[str, Any] = {"resourceVersion": str(rv)}
            if token:
                meta["continue"], meta["remainingItemCount"] = token, remaining
            head = json.dumps({"kind": f"{kind}List", "apiVersion": API_VERSIONS[prefix], "metadata": meta})
            body = head[:-1].encode() + b',"items":[' + b",".join(s.data for s in page) + b"]}"
            self._send(200, body)

        def _watch(self, resource: str, ns: str, prefix: str, q: dict[str, str]) -> None:
            selector = parse_selector(q.get("fieldSelector", ""))
            bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
            deadline = time.monotonic() + float(q.get("timeoutSeconds") or 1800)
            kind = RESOURCES[resource][1]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            sock = self.connection
            with store.lock:
                generation = api._generation
                api._watch_socks.add(sock)
                rv_text = q.get("resourceVersion", "")
                after = int(rv_text) if rv_text not in ("", "0") else store.rv
                initial = [] if rv_text not in ("", "0") else list(store.objects[resource].values())
            try:
                storm = api.storms.get(resource)
                if storm is not None:
                    for chunk in storm(after):
                        if api._generation != generation or time.monotonic() >= deadline:
                            break
                        self._chunk(chunk)
                    self.wfile.write(b"0\r\n\r\n")
                    return
                for s in initial:
                    self._chunk(b'{"type":"ADDED","object":' + s.data + b"}\n")
                last_bookmark = time.monotonic()
                while time.monotonic() < deadline:
                    lines: list[bytes] = []
                    with store.lock:
                        if api._generation != generation:
                            self.close_connection = True
                            return  # cut mid-stream: no terminating chunk
                        try:
                            for c in store.changes(after):
                                after = c.rv
                                if c.resource != resource or (ns and c.namespace != ns):
                                    continue
                                if c.type == "RAW":
                                    lines.append(c.raw)
                                elif c.stored is not None and (not selector or _selected(c, selector)):
                                    lines.append(
                                        b'{"type":"'
                                        + c.type.encode()
                                        + b'","object":'
                                        + c.stored.data
                                        + b"}\n"
                                    )
                        except ApiError as e:
                            lines.append(b'{"type":"ERROR","object":' + e.status() + b"}\n")
                            deadline = 0.0
                        if not lines:
                            store.lock.wait(min(api.bookmark_interval, max(0.0, deadline - time.monotonic())))
                    if lines:
                        self._chunk(b"".join(lines))
                    elif bookmarks and time.monotonic() - last_bookmark >= api.bookmark_interval:
                        mark = {
                            "kind": kind,
                            "apiVersion": API_VERSIONS[prefix],
                            "metadata": {"resourceVersion": str(after)},
                        }
                        self._chunk(b'{"type":"BOOKMARK","object":' + _encode(mark) + b"}\n")
                        last_bookmark = time.monotonic()
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True
            finally:
                with store.lock:
                    api._watch_socks.discard(sock)

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    return Handler


def _selected(change: Any, selector: list[tuple[str, str, bool]]) -> bool:
    from tapio_testing.k8s_api.store import matches

    return change.stored is not None and matches(change.stored.obj, selector)


def _encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
