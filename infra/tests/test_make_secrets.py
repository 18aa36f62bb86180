"""make-secrets.sh: the Secrets the manifests read, valid certificates, stable identities, clear errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.tests import natsconf
from tapio_testing import manifests as m
from tapio_testing.natsidentity import SCRIPT, Secrets, make_secrets

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


CLIENTS = {  # Secret nats-client-<id>: (common name, NATS user)
    **{w.removeprefix("tapio-"): (w, user) for w, (_, user, _) in m.WORKLOADS.items()},
    "readers": ("tapio-readers", "tapio-consumers"),
    "nack": ("nack", "nack"),
    "admin": ("tapio-admin", "tapio-admin"),
}


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
    cluster = m.load_docs(m.K8S / "overlays" / "nats-operator" / "natscluster.yaml")[0]["spec"]
    refs |= {
        (cluster["tls"]["serverSecret"], cluster["tls"][f"serverSecret{k}FileName"])
        for k in ("CA", "Cert", "Key")
    }
    refs.add((cluster["auth"]["clientsAuthSecret"], "clients-auth.json"))
    for patch in m.load_docs(m.K8S / "overlays" / "nats-operator" / "passwords.yaml"):
        refs |= m.secret_refs(patch)
    missing = sorted(ref for ref in refs if ref[1] not in secrets.get(ref[0], {}))
    assert missing == []
    assert {f"nats-client-{c}" for c in CLIENTS} <= set(secrets)


def names(path: Path) -> tuple[str, str, str]:
    """(subject, subjectAltName, extendedKeyUsage) of a certificate, as openssl prints them."""
    subject = openssl("x509", "-in", str(path), "-noout", "-subject", "-nameopt", "RFC2253").strip()
    ext = openssl("x509", "-in", str(path), "-noout", "-ext", "subjectAltName,extendedKeyUsage")
    san = re.search(r"Subject Alternative Name:\s*\n\s*(.*)", ext)
    eku = re.search(r"Extended Key Usage:\s*\n\s*(.*)", ext)
    return subject, san.group(1).strip() if san else "", eku.group(1).strip() if eku else ""


def test_certificates_chain_to_the_ca_and_name_the_services(out: Path) -> None:
    for name in ["server", *(f"clients/{c}" for c in CLIENTS)]:
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


def test_each_client_certificate_names_its_workload_and_maps_to_its_user(out: Path) -> None:
    """CN = the workload, the only DNS SAN = the NATS user the servers map it to (verify_and_map)."""
    users = {u["user"] for u in natsconf.parse_file(m.BASE / "nats" / "auth.conf")["authorization"]["users"]}
    for client, (cn, user) in CLIENTS.items():
        assert names(out / "clients" / f"{client}.crt") == (
            f"subject=CN={cn}", f"DNS:{user}", "TLS Web Client Authentication",
        ), client  # fmt: skip
        assert user in users, client


def public_key(pem: bytes, kind: str) -> str:
    args = ["pkey", "-pubout"] if kind == "key" else ["x509", "-noout", "-pubkey"]
    res = subprocess.run(["openssl", *args], input=pem, capture_output=True, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout.decode()


def test_each_workloads_secret_holds_only_its_own_key(secrets: Secrets) -> None:
    """A workload's Secret has its CA, certificate and key, no other key and no password; no key is
    in two Secrets; each manifest mounts its own Secret and names the user its certificate maps to."""
    seen: dict[bytes, str] = {}
    for client in CLIENTS:
        name = f"nats-client-{client}"
        secret = secrets[name]
        assert set(secret) == {"ca.crt", "tls.crt", "tls.key"}, name
        assert public_key(secret["tls.key"], "key") == public_key(secret["tls.crt"], "cert"), name
        assert secret["tls.key"] not in seen, f"{name} and {seen.get(secret['tls.key'])} share a key"
        seen[secret["tls.key"]] = name
    for workload, (kind, user, _) in m.WORKLOADS.items():
        doc = m.find(m.base_docs(), kind, workload)
        assert {secret for secret, _ in m.secret_refs(doc)} == {m.client_secret(workload)}, workload
        (container,) = m.pod_spec(doc)["containers"]
        assert (
            m.env_of(container)["NATS_IDENTITY"]["value"]
            == user
            == CLIENTS[workload.removeprefix("tapio-")][1]
        )


def test_passwords_exist_only_for_nats_operator(secrets: Secrets, tmp_path: Path) -> None:
    """With --operator: one password per user, read as strings by nats-server, all different, and
    the admin's in no Secret a workload may read. Without it: no password anywhere."""
    users = natsconf.parse_file(m.BASE / "nats" / "auth.conf")["authorization"]["users"]
    clients = json.loads(secrets["nats-clients-auth"]["clients-auth.json"])["users"]
    passwords = {u["username"]: u["password"] for u in clients}
    assert set(passwords) == {u["user"] for u in users}
    for user, password in passwords.items():
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{30,}", password), user
        assert natsconf.scalar(password) == password, user
    assert len(set(passwords.values())) == len(passwords), "every user has its own password"
    mounted = {k: v.decode() for k, v in secrets["nats-operator-passwords"].items()}
    assert mounted == {u: p for u, p in passwords.items() if u != "tapio-admin"}
    plain = make_secrets(tmp_path / "plain")
    assert not {"nats-operator-passwords", "nats-clients-auth"} & set(plain)
    assert not (tmp_path / "plain" / "passwords").exists()


def test_operator_clients_auth_has_the_permissions_of_auth_conf(secrets: Secrets) -> None:
    clients = json.loads(secrets["nats-clients-auth"]["clients-auth.json"])
    users = natsconf.parse_file(m.BASE / "nats" / "auth.conf")["authorization"]["users"]
    expected = {u["user"]: u["permissions"] for u in users}
    assert {u["username"]: u["permissions"] for u in clients["users"]} == expected


def test_a_certificate_naming_the_wrong_user_is_issued_again(tmp_path: Path) -> None:
    """A kept directory whose certificate no longer names its workload and user (an older layout,
    a copied file) gets a new certificate instead of being trusted."""
    first = make_secrets(tmp_path)
    readers = tmp_path / "clients" / "readers"
    pipeline = tmp_path / "clients" / "pipeline"
    shutil.copy(f"{readers}.crt", f"{pipeline}.crt")
    shutil.copy(f"{readers}.key", f"{pipeline}.key")
    again = make_secrets(tmp_path)
    assert names(pipeline.with_suffix(".crt"))[:2] == ("subject=CN=tapio-pipeline", "DNS:tapio-pipeline")
    assert again["nats-client-pipeline"]["tls.key"] != first["nats-client-readers"]["tls.key"]
    assert {k: v for k, v in again.items() if k != "nats-client-pipeline"} == {
        k: v for k, v in first.items() if k != "nats-client-pipeline"
    }


def test_second_run_keeps_the_identities(out: Path, secrets: Secrets) -> None:
    again = make_secrets(out, "--operator", "--namespace", "tapio")
    assert again == secrets


def test_extra_server_names_are_added_and_bad_ones_refused(tmp_path: Path) -> None:
    make_secrets(tmp_path / "s", "--san", "IP:10.213.7.11", "--san", "DNS:nats.example.org")
    server = openssl("x509", "-in", str(tmp_path / "s" / "server.crt"), "-noout", "-ext", "subjectAltName")
    assert "IP Address:10.213.7.11" in server
    assert "DNS:nats.example.org" in server
    assert "DNS:*.nats-jetstream" in server, "the Services' names stay"
    res = subprocess.run(["bash", str(SCRIPT), "--out", str(tmp_path / "t"), "--san", "10.0.0.1"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert res.returncode != 0
    assert (
        res.stderr.strip().splitlines()[-1]
        == "make-secrets: error: --san 10.0.0.1: expected IP:ADDR or DNS:NAME"
    )


def test_bad_usage_ends_with_one_clear_error(tmp_path: Path) -> None:
    res = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True, check=False)
    assert res.returncode != 0
    assert res.stderr.strip().splitlines()[-1] == "make-secrets: error: unknown argument: --bogus"
    res = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert res.returncode != 0
    assert "--out DIR is required" in res.stderr
    assert not list(tmp_path.iterdir())


def test_the_operators_certificate_is_in_no_secret_a_workload_mounts(secrets: Secrets) -> None:
    """Operators' certificate lives in nats-client-admin, which no workload references."""
    assert "nats-client-admin" in secrets
    for name in m.WORKLOADS:
        kind = m.WORKLOADS[name][0]
        refs = m.secret_refs(m.find(m.base_docs(), kind, name))
        assert not any(secret == "nats-client-admin" for secret, _ in refs), name
        assert not any(key == "tapio-admin" for _, key in refs), name
