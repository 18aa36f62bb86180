"""Talking to the production test cluster (natscluster) as a Tapio client: a connection as one
identity, and the manifests' JetStream resources (Stream and Consumer, replicas 3) created as the
NACK controller creates them in Kubernetes.

Fed by infra/k8s/base (the resources) and natsidentity (who connects)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import anyio
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import api

from tapio_common.config import NatsConfig
from tapio_common.nats.connect import inbox_prefix, tls_context
from tapio_testing import manifests as m
from tapio_testing.natsidentity import Identity, Secrets, client_identity

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
NO_PEERS = 10005  # JetStream err_code: "no suitable peers for placement" (a peer not yet current)


class HasUrls(Protocol):
    @property
    def urls(self) -> list[str]: ...


def go_duration_s(text: str) -> float:
    """Seconds of a Go time.Duration string as NACK reads it ("168h", "2m", "1m30s")."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Go duration: {text!r}")
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def nack_identity(secrets: Secrets, root: Path) -> Identity:
    """NACK's connection (Secret nats-client-nack, the Account resource's), its TLS files under root."""
    account = m.find(m.base_docs(), "Account", "tapio")["spec"]
    assert account["tls"]["secret"]["name"] == "nats-client-nack"
    assert "user" not in account, "NACK sends no user: its certificate maps to user nack"
    return client_identity(secrets, "nack", "nack", root)


@asynccontextmanager
async def connected(
    cluster: HasUrls | Sequence[str], ident: Identity, errors: list[str] | None = None
) -> AsyncIterator[Client]:
    """A client connected as `ident` (its certificate; a user and password only if the identity has a
    password); the server's asynchronous errors (permission violations) go to `errors`."""

    async def on_error(e: Exception) -> None:
        if errors is not None:
            errors.append(str(e))

    urls = list(cluster) if isinstance(cluster, Sequence) else cluster.urls
    nc = await nats.connect(
        servers=urls, user=ident.user if ident.password else None, password=ident.password,
        tls=tls_context(NatsConfig(tls=ident.tls)), error_cb=on_error, allow_reconnect=False, connect_timeout=5,
        name=ident.user, inbox_prefix=inbox_prefix(NatsConfig(identity=ident.user)),  # as every Tapio client does
    )  # fmt: skip
    try:
        yield nc
    finally:
        await nc.close()


def _duration(spec: dict[str, Any], key: str) -> float:
    return go_duration_s(spec[key]) if spec.get(key) else 0.0


def stream_config(spec: dict[str, Any]) -> api.StreamConfig:
    """What NACK sends for a Stream resource (v1beta2 spec -> JetStream StreamConfig; absent = NACK's default)."""
    return api.StreamConfig(
        name=spec["name"], description=spec.get("description"), subjects=spec["subjects"],
        storage=api.StorageType(spec["storage"]), num_replicas=spec["replicas"],
        retention=api.RetentionPolicy(spec.get("retention", "limits")),
        discard=api.DiscardPolicy(spec.get("discard", "old")),
        max_age=_duration(spec, "maxAge"), max_msgs=spec.get("maxMsgs", -1),
        max_bytes=spec.get("maxBytes", -1), max_msg_size=spec.get("maxMsgSize", -1),
        max_msgs_per_subject=spec.get("maxMsgsPerSubject", -1),
        duplicate_window=_duration(spec, "duplicateWindow"),
        allow_direct=spec.get("allowDirect", False), allow_rollup_hdrs=spec.get("allowRollup", False),
        deny_delete=spec.get("denyDelete", False), allow_atomic=spec.get("allowAtomicPublish") or None,
    )  # fmt: skip


def consumer_config(spec: dict[str, Any]) -> api.ConsumerConfig:
    return api.ConsumerConfig(
        durable_name=spec["durableName"], name=spec["durableName"], description=spec.get("description"),
        deliver_policy=api.DeliverPolicy(spec["deliverPolicy"]), ack_policy=api.AckPolicy(spec["ackPolicy"]),
        ack_wait=go_duration_s(spec["ackWait"]), max_deliver=spec["maxDeliver"],
        max_ack_pending=spec["maxAckPending"], filter_subject=spec.get("filterSubject"), filter_subjects=spec.get("filterSubjects"),
        replay_policy=api.ReplayPolicy(spec["replayPolicy"]),
    )  # fmt: skip


def consumer_spec(durable: str) -> dict[str, Any]:
    """The spec of the Consumer resource with this durable name."""
    specs: list[dict[str, Any]] = [
        d["spec"] for d in m.base_docs() if d["kind"] == "Consumer" and d["spec"]["durableName"] == durable
    ]
    assert len(specs) == 1, durable
    return specs[0]


def stream_spec(name: str) -> dict[str, Any]:
    """The spec of the Stream resource with this stream name."""
    specs: list[dict[str, Any]] = [
        d["spec"] for d in m.base_docs() if d["kind"] == "Stream" and d["spec"]["name"] == name
    ]
    assert len(specs) == 1, name
    return specs[0]


async def provision_like_nack(cluster: HasUrls | Sequence[str], nack: Identity) -> None:
    """Creates the Stream and Consumer resources of the manifests as the NATS user `nack`."""
    async with connected(cluster, nack) as nc:
        jsm = nc.jsm()
        for doc in m.base_docs():
            if doc["kind"] == "Stream":
                await retry(lambda d=doc: jsm.add_stream(stream_config(d["spec"])))
        for doc in m.base_docs():
            if doc["kind"] == "Consumer":
                spec = doc["spec"]
                await retry(lambda s=spec: jsm.add_consumer(s["streamName"], consumer_config(s)))


async def retry(call: Any, attempts: int = 50) -> Any:
    """The meta group may still be electing its leader right after /healthz turns 200, and a busy
    cluster may briefly count a peer offline when placing an R3 stream: both pass within seconds."""
    for _ in range(attempts - 1):
        try:
            return await call()
        except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError):
            await anyio.sleep(0.2)
        except nats.js.errors.APIError as e:
            if e.err_code != NO_PEERS:
                raise
            await anyio.sleep(0.2)
    return await call()
