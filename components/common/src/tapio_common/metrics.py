"""The metrics every component exposes, and the HTTP endpoint serving /metrics, /healthz, /readyz."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attrs
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from tapio_common.errors import ConfigError
from tapio_common.logging import get_logger

log = get_logger(__name__)

_LATENCY_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ComponentMetrics:
    """The standard set: `tapio_<component>_events_{received,published,dropped}_total`,
    `_errors_total` and `_processing_seconds`, in a registry of the component's own."""

    def __init__(self, component: str, registry: CollectorRegistry | None = None) -> None:
        self.component = component.replace("-", "_")
        self.registry = registry if registry is not None else CollectorRegistry()
        prefix = f"tapio_{self.component}"
        self.received = Counter(f"{prefix}_events_received", "Events taken in.", registry=self.registry)
        self.published = Counter(
            f"{prefix}_events_published", "Events (or results) confirmed published.", registry=self.registry
        )
        self.dropped = Counter(
            f"{prefix}_events_dropped", "Events dropped, by reason.", ["reason"], registry=self.registry
        )
        self.errors = Counter(f"{prefix}_errors", "Errors, by kind.", ["kind"], registry=self.registry)
        self.processing = Histogram(
            f"{prefix}_processing_seconds",
            "Time spent handling one unit of work.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def drop(self, reason: str, count: int = 1) -> None:
        """Count `count` dropped events under `reason` (never drop without calling this)."""
        self.dropped.labels(reason=reason).inc(count)

    def error(self, kind: str) -> None:
        self.errors.labels(kind=kind).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@attrs.define
class Health:
    """Liveness and readiness: checks are callables returning (ok, detail)."""

    live_checks: dict[str, Callable[[], tuple[bool, str]]] = attrs.field(factory=dict)
    ready_checks: dict[str, Callable[[], tuple[bool, str]]] = attrs.field(factory=dict)

    def run(self, kind: str) -> tuple[bool, str]:
        checks = self.ready_checks if kind == "ready" else self.live_checks
        lines, ok = [], True
        for name, check in checks.items():
            passed, detail = check()
            ok = ok and passed
            lines.append(f"{'ok' if passed else 'FAIL'} {name}: {detail}")
        return ok, "\n".join(lines) + "\n" if lines else "ok\n"


class MetricsServer:
    """Serves /metrics, /healthz and /readyz on a port in a daemon thread (never in the event loop)."""

    def __init__(self, metrics: ComponentMetrics, health: Health, port: int, host: str = "0.0.0.0") -> None:
        handler = _make_handler(metrics, health)
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as e:
            raise ConfigError(f"cannot listen for metrics on {host}:{port}: {e.strerror}") from e
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        log.info("metrics and health endpoint listening", url=f"http://127.0.0.1:{self.port}/metrics")
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> MetricsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _make_handler(metrics: ComponentMetrics, health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, metrics.exposition(), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/readyz"):
                ok, body = health.run("ready" if path == "/readyz" else "live")
                self._reply(200 if ok else 503, body.encode(), "text/plain; charset=utf-8")
            else:
                self._reply(404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain")

        def _reply(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None  # scrapes are not worth a log line each

    return Handler
