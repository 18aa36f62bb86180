"""TLS with CA verification and nkey authentication against a real nats-server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import nkeys
import pytest

from tapio_common.config import NatsConfig, TlsConfig
from tapio_common.errors import NatsUnavailableError
from tapio_common.nats.connect import connect
from tapio_common.nats.embedded import EmbeddedNats

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    d = tmp_path / "pki"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=tapio-test-ca",
            "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", f"{name}.pem", cwd=d)  # fmt: skip
    return d


async def test_tls_with_ca_verify_and_client_cert(pki: Path, tmp_path: Path) -> None:
    args = ("--tls", "--tlscert", str(pki / "server.pem"), "--tlskey", str(pki / "server-key.pem"),
            "--tlscacert", str(pki / "ca.pem"), "--tlsverify")  # fmt: skip
    with EmbeddedNats(tmp_path / "js", extra_args=args) as server:
        tls = TlsConfig(cert=str(pki / "client.pem"), key=str(pki / "client-key.pem"), ca=str(pki / "ca.pem"))
        nc = await connect(NatsConfig(urls=(f"tls://127.0.0.1:{server.port}",), tls=tls), "test")
        try:
            assert nc.is_connected
            await nc.publish("t", b"x")
            await nc.flush()
        finally:
            await nc.close()
        # A client that trusts another CA refuses the server's certificate.
        other = tmp_path / "other"
        other.mkdir()
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                "-keyout", "k.pem", "-out", "ca.pem", cwd=other)  # fmt: skip
        bad = TlsConfig(cert=tls.cert, key=tls.key, ca=str(other / "ca.pem"))
        with pytest.raises(NatsUnavailableError, match="certificate verify failed"):
            await connect(
                NatsConfig(urls=(f"tls://127.0.0.1:{server.port}",), tls=bad, connect_timeout=1), "test"
            )


async def test_nkey_authentication(tmp_path: Path) -> None:
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    seed_file = tmp_path / "user.nk"
    seed_file.write_bytes(seed)
    store = tmp_path / "js"
    store.mkdir()
    (store / "auth.conf").write_text(f'authorization {{ users = [ {{ nkey: "{public}" }} ] }}\n')
    with EmbeddedNats(store, extra_args=("-c", str(store / "auth.conf"))) as server:
        nc = await connect(NatsConfig(urls=(server.url,), nkey=str(seed_file)), "test")
        assert nc.is_connected
        await nc.close()
        other = tmp_path / "other.nk"
        other.write_bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
        with pytest.raises(NatsUnavailableError, match="Authorization Violation"):
            await connect(NatsConfig(urls=(server.url,), nkey=str(other)), "test")


def test_each_named_user_gets_its_own_inbox_prefix() -> None:
    from tapio_common.config import NatsConfig
    from tapio_common.nats.connect import inbox_prefix

    assert inbox_prefix(NatsConfig(user="tapio-siem-exporter")) == "_INBOX.tapio-siem-exporter"
    assert inbox_prefix(NatsConfig(user="a.b>*")) == "_INBOX.a_b__"  # never changes the subject's shape
    assert inbox_prefix(NatsConfig()) == "_INBOX"
