"""NATS connection factory: URL list, creds/nkey/user-password auth, TLS, reconnect policy, logged events."""

from __future__ import annotations

import re
import ssl
import time
import weakref
from collections.abc import Callable

import anyio
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import NoServersError

from tapio_common.config import NatsConfig
from tapio_common.errors import ConfigError, NatsUnavailableError
from tapio_common.logging import get_logger
from tapio_common.nats.client import TapioClient

log = get_logger(__name__)

DEFAULT_INBOX = "_INBOX"
_REFUSED = "NATS refused an operation this user is not permitted (check its certificate and the server's permissions)"
REFUSAL_LOG_INTERVAL = 60.0  # seconds between two log lines of the same refusal
INITIAL_ATTEMPTS = 1  # nats-py: each server is tried INITIAL_ATTEMPTS + 1 times before giving up

# How many permission refusals each connection has had, and the latest (`refusals(nc)`).
_REFUSALS: weakref.WeakKeyDictionary[Client, tuple[int, str]] = weakref.WeakKeyDictionary()


def refusals(nc: Client) -> tuple[int, str]:
    """How many permission refusals the server sent this connection so far, and the latest
    (`refusal()` text, "" when none): a request the server refused gets no reply, so a caller
    waiting for one tells a refusal from a slow cluster by this count growing meanwhile."""
    return _REFUSALS.get(nc, (0, ""))


def inbox_prefix(cfg: NatsConfig) -> str:
    """The reply inbox of this client: `_INBOX.<user>` for a named user (the user it sends, or the
    identity its certificate maps to), so that a user granted only its own inbox
    (infra/k8s/base/nats/auth.conf) never sees another user's replies; `_INBOX` else."""
    user = re.sub(r"[^A-Za-z0-9_-]", "_", cfg.user or cfg.identity or "")
    return f"{DEFAULT_INBOX}.{user}" if user else DEFAULT_INBOX


def tls_context(cfg: NatsConfig) -> ssl.SSLContext | None:
    """A client SSLContext verifying the server with the CA (and presenting the client cert), or None."""
    if not cfg.tls.enabled:
        return None
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cfg.tls.ca)
        if cfg.tls.cert and cfg.tls.key:
            ctx.load_cert_chain(cfg.tls.cert, cfg.tls.key)
    except (ssl.SSLError, OSError) as e:
        raise ConfigError(
            f"bad TLS files (cert={cfg.tls.cert}, key={cfg.tls.key}, ca={cfg.tls.ca}): {e}"
        ) from e
    return ctx


def refusal(text: str) -> str | None:
    """The server's permission refusal in an error text (nats-py lower-cases it), or None:
    `permissions violation for publish to "tapio.events.x"`."""
    m = re.search(r"permissions violation for \w+ to \S+", text, re.IGNORECASE)
    return m.group(0).replace("'", "") if m else None


async def connect(
    cfg: NatsConfig,
    name: str,
    *,
    urls: tuple[str, ...] | None = None,
    on_refused: Callable[[str], None] | None = None,
) -> Client:
    """Connects to NATS, or raises NatsUnavailableError naming the URLs and the cause.

    A permission the server refuses (this user may not publish or subscribe there) is logged as one
    ERROR line naming the operation and subject (the same refusal again within
    REFUSAL_LOG_INTERVAL is not logged again, its next line says how often it came again: refused_again), and
    `on_refused(detail)` is called every time (components count it as errors_total{kind="permission"})."""
    servers = list(urls if urls is not None else cfg.urls)
    if not servers:
        raise ConfigError("no NATS URL given (set NATS_URL or --nats-url)")

    last_error: list[str] = []
    logged: dict[str, tuple[float | None, int]] = {}  # refusal -> (when last logged, repeats since)

    async def on_error(e: Exception) -> None:
        text = str(e).removeprefix("nats: ").strip("'") or type(e).__name__
        refused = refusal(text)
        if refused is not None:
            _REFUSALS[nc] = (refusals(nc)[0] + 1, refused)
            # One line per refused operation: a publisher retrying a refused batch is refused again
            # every few seconds; repeats are counted (on_refused) and summed into the next line,
            # logged at most every REFUSAL_LOG_INTERVAL.
            now = time.monotonic()
            last, repeats = logged.get(refused, (None, 0))
            if last is None or now - last >= REFUSAL_LOG_INTERVAL:
                logged[refused] = (now, 0)
                user = cfg.user or cfg.identity or ""
                if repeats:
                    log.error(_REFUSED, client=name, user=user, refused=refused, refused_again=repeats)
                else:
                    log.error(_REFUSED, client=name, user=user, refused=refused)
            else:
                logged[refused] = (last, repeats + 1)
            if on_refused is not None:
                on_refused(refused)
            return
        # The server's own refusal (authorization, TLS) explains more than the reset that follows it.
        if not (last_error and isinstance(e, OSError) and not isinstance(e, ssl.SSLError)):
            last_error[:] = [text]
        if nc.is_connected or nc.is_reconnecting:
            log.warning("nats connection error", client=name, error=last_error[0])

    async def on_disconnected() -> None:
        if not nc.is_closed:  # a close we asked for is reported by on_closed
            log.warning("nats disconnected", client=name)

    async def on_reconnected() -> None:
        log.info("nats reconnected", client=name, url=_url(nc))

    async def on_closed() -> None:
        log.info("nats connection closed", client=name)

    nc = TapioClient()  # nats-py's Client with a cheaper header parse (tapio_common.nats.client)
    # nats-py can wait forever on a failed TLS handshake; first contact has a hard deadline.
    deadline = (cfg.connect_timeout + 1.5) * (INITIAL_ATTEMPTS + 1) * len(servers) + 1.0
    try:
        with anyio.fail_after(deadline):
            await nc.connect(
                servers=servers,
                name=name,
                user_credentials=cfg.creds,
                nkeys_seed=cfg.nkey,
                user=cfg.user,
                password=cfg.password,
                tls=tls_context(cfg),
                inbox_prefix=inbox_prefix(cfg),
                connect_timeout=int(max(1, cfg.connect_timeout)),
                # First contact: try each server twice, then fail with the reason (a bad URL or a
                # wrong password must not hang); once connected, the configured policy applies.
                reconnect_time_wait=1,
                max_reconnect_attempts=INITIAL_ATTEMPTS,
                error_cb=on_error,
                disconnected_cb=on_disconnected,
                reconnected_cb=on_reconnected,
                closed_cb=on_closed,
                pending_size=64 * 1024 * 1024,
            )
    except NoServersError as e:
        reason = last_error[0] if last_error else "no server answered"
        raise NatsUnavailableError(f"cannot reach NATS at {', '.join(servers)}: {reason}") from e
    except TimeoutError as e:
        await _close_quietly(nc)
        reason = last_error[0] if last_error else "no answer"
        raise NatsUnavailableError(
            f"cannot connect to NATS at {', '.join(servers)} within {deadline:.0f}s: {reason}"
        ) from e
    except (NatsError, OSError, ssl.SSLError) as e:
        await _close_quietly(nc)
        detail = str(e) or type(e).__name__
        raise NatsUnavailableError(f"cannot connect to NATS at {', '.join(servers)}: {detail}") from e
    nc.options["max_reconnect_attempts"] = cfg.max_reconnects
    nc.options["reconnect_time_wait"] = cfg.reconnect_wait
    log.info("nats connected", client=name, url=_url(nc), server=nc.connected_server_version)
    return nc


def _url(nc: Client) -> str:
    u = nc.connected_url
    return f"{u.scheme}://{u.hostname}:{u.port}" if u else "?"


async def _close_quietly(nc: Client) -> None:
    if not nc.is_closed:
        with anyio.move_on_after(2):
            try:
                await nc.close()
            except (NatsError, OSError) as e:
                log.debug("closing a failed connection", error=str(e))
