"""Waiting out the cluster at start: a component whose first JetStream calls meet a NATS node lost
(no meta leader yet, a stream's leader moving, an R3 bucket without its peers) waits with backoff
instead of exiting; a refusal or a bad request still fails at once.

Fed by every startup step that asks JetStream something: `component_host` (connect, provisioning),
the consumer runtime's bind, the correlator's snapshot bucket and recovery reads, the exporter's
alert read-back, the pipeline's pod feed. Each calls `until_answered(nc, what, op)`:

- `op()` returns: done (one INFO line if it had to wait);
- it fails with what a cluster in election answers (no reply, 503, a 500 "stream offline", "no
  suitable peers", reconnecting; also through a `raise ... from e` chain): one WARNING line per
  attempt naming what it waits for, `/readyz` false ("waiting for ...") meanwhile, retried after
  0.5 s doubling to 10 s, for `wait` seconds (None: until it answers; SIGTERM stops the process);
- the server refused it (this user may not; `tapio_common.nats.connect` logged the ERROR line):
  `StartupRefused` at once, never retried;
- anything else (a bad request, a bug): raised at once, as before.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from nats.aio.client import Client
from nats.errors import (
    ConnectionReconnectingError,
    NoRespondersError,
    NoServersError,
    OutboundBufferLimitError,
    StaleConnectionError,
)
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import APIError, NoStreamResponseError, ServerError, ServiceUnavailableError

from tapio_common.errors import NatsUnavailableError
from tapio_common.logging import get_logger
from tapio_common.metrics import Health
from tapio_common.nats.connect import refusals
from tapio_jetstream.errors import JetStreamError

log = get_logger(__name__)

T = TypeVar("T")

FIRST_DELAY = 0.5
MOST_DELAY = 10.0
# JetStream error codes (400s) that a lost node causes and its return cures.
NO_SUITABLE_PEERS = 10005  # an R3 stream / bucket with only two nodes up
INSUFFICIENT_RESOURCES = 10023
TRANSIENT_CODES = frozenset({NO_SUITABLE_PEERS, INSUFFICIENT_RESOURCES})
# A connection refused for good: wrong credentials or certificates, or a host name that does not
# resolve (a typo in NATS_URL), do not heal by waiting; a refused or unanswered connection may.
PERMANENT_CONNECT = re.compile(
    r"authori[sz]ation|certificate|ssl|tls|permission|name or service not known|"
    r"no address associated|nodename nor servname",
    re.IGNORECASE,
)


class StartupError(JetStreamError):
    """A startup step gave up: the cluster did not answer within its wait."""


class StartupRefused(StartupError):
    """The server refused a startup step (this user may not): never retried."""


def transient(e: BaseException) -> bool:
    """Whether `e` (or an error it was raised from) is what a cluster in election answers."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if _transient_one(cur):
            return True
        cur = cur.__cause__
    return False


def _transient_one(e: BaseException) -> bool:
    if isinstance(e, NatsUnavailableError):
        return PERMANENT_CONNECT.search(str(e)) is None
    if isinstance(
        e,
        NatsTimeoutError
        | TimeoutError
        | NoRespondersError
        | NoServersError
        | ConnectionReconnectingError
        | StaleConnectionError
        | OutboundBufferLimitError
        | NoStreamResponseError
        | ServiceUnavailableError
        | ServerError,
    ):
        return True
    return isinstance(e, APIError) and e.err_code in TRANSIENT_CODES


class Waiting:
    """The `/readyz` check "startup": false while a step waits for the cluster (one per Health)."""

    def __init__(self) -> None:
        self.steps: dict[int, str] = {}

    def check(self) -> tuple[bool, str]:
        if not self.steps:
            return True, "started"
        return False, "waiting for " + ", ".join(sorted(set(self.steps.values())))


def _waiting(health: Health) -> Waiting:
    check = health.ready_checks.get("startup")
    owner = getattr(check, "__self__", None)
    if isinstance(owner, Waiting):
        return owner
    w = Waiting()
    health.ready_checks["startup"] = w.check
    return w


async def until_answered(
    nc: Client | None,
    what: str,
    op: Callable[[], Awaitable[T]],
    *,
    health: Health | None = None,
    wait: float | None = None,
    stopping: Callable[[], bool] = lambda: False,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """`await op()`, retried while the cluster cannot answer (see the module docstring). `what`
    names what is waited for ("the snapshot bucket TAPIO_STATE"); `nc` is the connection whose
    refusals count (None before one exists); `stopping()` true ends the wait with the last error;
    `retry_on`: more error types waited out, refused or not (a consumer or bucket missing that
    this user may not create: its operator, NACK, creates it later)."""
    waiting = _waiting(health) if health is not None else None
    key = object()
    started = time.monotonic()
    delay, attempt = FIRST_DELAY, 0
    try:
        while True:
            before = refusals(nc)[0] if nc is not None else 0
            try:
                result = await op()
            except Exception as e:
                count, latest = refusals(nc) if nc is not None else (0, "")
                if not isinstance(e, retry_on):
                    if count > before:
                        raise StartupRefused(f"{what}: refused by the server: {latest}") from e
                    if not transient(e):
                        raise
                waited = time.monotonic() - started
                if stopping() or (wait is not None and waited + delay > wait):
                    raise StartupError(
                        f"{what}: no answer from the NATS cluster after {waited:.0f} s: {_text(e)}"
                    ) from e
                attempt += 1
                if waiting is not None:
                    waiting.steps[id(key)] = what
                log.warning(
                    f"waiting for {what}: the NATS cluster does not answer yet",
                    attempt=attempt,
                    error=_text(e),
                    retry_in=delay,
                )
                await anyio.sleep(delay)
                delay = min(delay * 2, MOST_DELAY)
                continue
            if attempt:
                log.info(
                    f"{what}: the NATS cluster answered", after_seconds=round(time.monotonic() - started, 1)
                )
            return result
    finally:
        if waiting is not None:
            waiting.steps.pop(id(key), None)


def _text(e: BaseException) -> str:
    return str(e).removeprefix("nats: ") or type(e).__name__
