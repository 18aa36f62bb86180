"""make-secrets.sh: the Secrets the manifests read, valid certificates, stable identities, clear errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.tests import manifests as m
from infra.tests import natsconf
from infra.tests.livecluster import SCRIPT, Secrets, make_secrets

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="make-secrets.sh needs openssl")


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("secrets")


@pytest.fixture(scope="module")
def secrets(out: Path) -> Secrets:
    return make_secrets(out, "--operator", "--namespace", "tapio")


def openssl(*args: str) -> str:
    res = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_every_secret_reference_of_the_manifests_is_satisfied(secrets: Secrets) -> None:
    docs = m.base_docs()
    refs = {
        ref
        for d in docs
        if d["kind"] in ("DaemonSet", "Deployment", "StatefulSet")
        for ref in m.secret_refs(d)
    }
    account = m.find(docs, "Account", "tapio")["spec"]
    refs |= {(account["tls"]["secret"]["name"], account["tls"][k]) for k in ("ca", "cert", "key")}
    refs |= {(account["user"]["secret"]["name"], account["user"][k]) for k in ("user", "password")}
    cluster = m.load_docs(m.K8S / "overlays" / "nats-operator" / "natscluster.yaml")[0]["spec"]
    refs |= {
        (cluster["tls"]["serverSecret"], cluster["tls"][f"serverSecret{k}FileName"])
        for k in ("CA", "Cert", "Key")
    }
    refs.add((cluster["auth"]["clientsAuthSecret"], "clients-auth.json"))
    missing = sorted(ref for ref in refs if ref[1] not in secrets.get(ref[0], {}))
    assert missing == []
    assert secrets["nats-nack-creds"]["user"] == b"nack"


def test_certificates_chain_to_the_ca_and_name_the_services(out: Path) -> None:
    for name in ("server", "client", "nack"):
        assert (
            openssl("verify", "-CAfile", str(out / "ca.crt"), str(out / f"{name}.crt")).strip().endswith("OK")
        )
    server = openssl(
        "x509", "-in", str(out / "server.crt"), "-noout", "-ext", "subjectAltName,extendedKeyUsage"
    )
    for san in ("DNS:tapio-nats", "DNS:*.nats-jetstream", "DNS:tapio-nats.tapio.svc",
                "DNS:*.tapio-nats-headless.tapio.svc.cluster.local", "DNS:tapio-nats-mgmt", "IP Address:127.0.0.1"):  # fmt: skip
        assert san in server, san
    # Routes present the server certificate as clients of the other servers.
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in server
    client = openssl("x509", "-in", str(out / "client.crt"), "-noout", "-ext", "extendedKeyUsage")
    assert "TLS Web Client Authentication" in client


def test_passwords_read_as_strings_by_nats_server(secrets: Secrets) -> None:
    users = natsconf.parse_file(m.BASE / "nats" / "auth.conf")["authorization"]["users"]
    passwords = {k: v for k, v in secrets["nats-user-creds"].items() if "." not in k}
    passwords["nack"] = secrets["nats-nack-creds"]["password"]
    passwords["tapio-admin"] = secrets["nats-admin-creds"]["password"]
    assert set(passwords) == {u["user"] for u in users}
    for user, raw in passwords.items():
        password = raw.decode()
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{30,}", password), user
        assert natsconf.scalar(password) == password, user
    assert len(set(passwords.values())) == len(passwords), "every user has its own password"


def test_operator_clients_auth_has_the_permissions_of_auth_conf(secrets: Secrets) -> None:
    clients = json.loads(secrets["nats-clients-auth"]["clients-auth.json"])
    users = natsconf.parse_file(m.BASE / "nats" / "auth.conf")["authorization"]["users"]
    expected = {u["user"]: u["permissions"] for u in users}
    assert {u["username"]: u["permissions"] for u in clients["users"]} == expected
    for u in clients["users"]:
        own = {"nack": "nats-nack-creds", "tapio-admin": "nats-admin-creds"}
        source = (
            secrets[own[u["username"]]]["password"]
            if u["username"] in own
            else secrets["nats-user-creds"][u["username"]]
        )
        assert u["password"] == source.decode()


def test_second_run_keeps_the_identities(out: Path, secrets: Secrets) -> None:
    again = make_secrets(out, "--operator", "--namespace", "tapio")
    assert again == secrets


def test_bad_usage_ends_with_one_clear_error(tmp_path: Path) -> None:
    res = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True, check=False)
    assert res.returncode != 0
    assert res.stderr.strip().splitlines()[-1] == "make-secrets: error: unknown argument: --bogus"
    res = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert res.returncode != 0
    assert "--out DIR is required" in res.stderr
    assert not list(tmp_path.iterdir())


def test_the_admin_password_is_in_no_secret_a_workload_mounts(secrets: Secrets) -> None:
    """Operators' credentials live in nats-admin-creds, which no workload references."""
    assert "tapio-admin" not in secrets["nats-user-creds"]
    assert secrets["nats-admin-creds"]["user"] == b"tapio-admin"
    for name in m.WORKLOADS:
        kind = m.WORKLOADS[name][0]
        refs = m.secret_refs(m.find(m.base_docs(), kind, name))
        assert not any(secret == "nats-admin-creds" for secret, _ in refs), name
        assert not any(key == "tapio-admin" for _, key in refs), name
