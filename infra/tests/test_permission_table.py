"""Every NATS user of the production configuration against one table of operations, on the real
3-node cluster: what the design allows each user works, everything else is refused by the server.

Operations: publishing each data subject class and its own or another's dead letters, subscribing
to each class and to another user's inbox, creating a durable consumer, writing the correlator's
KV bucket, and a stream admin request (a delete of a stream that does not exist: harmless when
allowed). And the transport: no certificate, a certificate of another CA, plain text: refused.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import nats
import nats.errors
import pytest
from nats.aio.client import Client

from infra.tests.permtable import PUBLISH, SUBSCRIBE, USERS, A, K, P
from tapio_common.config import TlsConfig
from tapio_testing.natscluster import NatsCluster
from tapio_testing.natsidentity import Identity, Secrets, client_identity
from tapio_testing.natsprovision import connected

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="make-secrets.sh needs openssl"),
]


@pytest.fixture(scope="module")
def people(
    identities: dict[str, Identity], secrets: Secrets, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Identity]:
    out = {user: identities[w] for user, w in USERS.items() if w in identities}
    out[K] = client_identity(secrets, "readers", K, tmp_path_factory.mktemp("table-readers"))
    out[A] = client_identity(secrets, "admin", A, tmp_path_factory.mktemp("table-admin"))
    return out


async def _violations(
    cluster: NatsCluster, ident: Identity, act: Callable[[Client], Awaitable[None]]
) -> list[str]:
    errors: list[str] = []
    async with connected(cluster, ident, errors) as nc:
        await act(nc)
        await nc.flush()
        await anyio.sleep(0.4)  # the server's -ERR for a refused operation arrives asynchronously
    return [e for e in errors if "permissions violation" in e.lower()]


@pytest.mark.parametrize(("subject", "allowed"), PUBLISH, ids=[s for s, _ in PUBLISH])
async def test_publish_table(
    cluster: NatsCluster, people: dict[str, Identity], subject: str, allowed: set[str]
) -> None:
    for user, ident in people.items():

        async def act(nc: Client, subject: str = subject) -> None:
            await nc.publish(subject, b"{}")

        refused = await _violations(cluster, ident, act)
        assert bool(refused) == (user not in allowed), (user, subject, refused)


@pytest.mark.parametrize(("subject", "allowed"), SUBSCRIBE, ids=[s for s, _ in SUBSCRIBE])
async def test_subscribe_table(
    cluster: NatsCluster, people: dict[str, Identity], subject: str, allowed: set[str]
) -> None:
    for user, ident in people.items():

        async def act(nc: Client, subject: str = subject) -> None:
            await nc.subscribe(subject)

        refused = await _violations(cluster, ident, act)
        assert bool(refused) == (user not in allowed), (user, subject, refused)


def _other_ca(root: Path) -> TlsConfig:
    """A client certificate signed by a CA the servers do not trust."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=evil-ca",
        "-keyout", str(root / "ca.key"), "-out", str(root / "ca.crt"))  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=tapio-pipeline",
        "-keyout", str(root / "c.key"), "-out", str(root / "c.csr"))  # fmt: skip
    # It names a real user, as a forged certificate would.
    (root / "c.ext").write_text("extendedKeyUsage=clientAuth\nsubjectAltName=DNS:tapio-pipeline\n")
    run("x509", "-req", "-in", str(root / "c.csr"), "-CA", str(root / "ca.crt"), "-CAkey", str(root / "ca.key"),
        "-CAcreateserial", "-days", "2", "-extfile", str(root / "c.ext"), "-out", str(root / "c.crt"))  # fmt: skip
    return TlsConfig(cert=str(root / "c.crt"), key=str(root / "c.key"), ca=str(root / "ca.crt"))


async def test_transport_without_the_design_is_refused(
    cluster: NatsCluster, people: dict[str, Identity], tmp_path: Path
) -> None:
    good = people[P]
    # A certificate from another CA: the client's own CA file is the servers' one, its cert is not.
    evil = _other_ca(tmp_path)
    forged = Identity(good.user, TlsConfig(cert=evil.cert, key=evil.key, ca=good.tls.ca))
    with pytest.raises((ssl.SSLError, ConnectionError, nats.errors.Error)):
        async with connected(cluster, forged):
            pass
    # No certificate at all.
    with pytest.raises((ssl.SSLError, ConnectionError, nats.errors.Error)):
        async with connected(cluster, Identity(good.user, TlsConfig(ca=good.tls.ca))):
            pass
    # Plain text (no TLS): the servers require TLS.
    with pytest.raises((ssl.SSLError, ConnectionError, nats.errors.Error, OSError)):
        await nats.connect(
            servers=cluster.urls, user=good.user, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=3,
        )  # fmt: skip
    # The workload's own certificate, sending nothing else, works.
    async with connected(cluster, good) as nc:
        assert nc.is_connected
