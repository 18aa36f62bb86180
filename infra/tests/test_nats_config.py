"""The NATS server configuration and StatefulSet match the seed: cluster, JetStream, TLS, users, permissions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.tests import contract, natsconf
from tapio_testing import manifests as m

NATS_DIR = m.BASE / "nats"


@pytest.fixture(scope="module")
def conf() -> dict[str, Any]:
    return natsconf.parse_file(NATS_DIR / "nats.conf")


@pytest.fixture(scope="module")
def users(conf: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["user"]: u for u in conf["authorization"]["users"]}


def perms(user: dict[str, Any], action: str) -> tuple[list[str], list[str]]:
    return natsconf.permission_lists(user["permissions"].get(action))


def test_server_settings_follow_the_seed(conf: dict[str, Any]) -> None:
    assert conf["server_name"] == natsconf.Var("POD_NAME")
    assert conf["cluster"]["name"] == "tapio-nats"
    assert conf["jetstream"] == {
        "store_dir": "/data/jetstream",
        "max_file_store": 10 * contract.GB,
        "max_memory_store": 1 * contract.GB,
    }
    # Clients: verified and mapped to the user their certificate names (verify_and_map); routes: verified.
    assert conf["tls"]["verify_and_map"] is True
    assert "verify" not in conf["tls"]
    assert conf["cluster"]["tls"]["verify"] is True
    for block in (conf["tls"], conf["cluster"]["tls"]):
        assert {block["cert_file"], block["key_file"], block["ca_file"]} == {
            "/etc/nats-certs/server-cert.pem", "/etc/nats-certs/server-key.pem", "/etc/nats-certs/ca-cert.pem",
        }  # fmt: skip
    assert conf["authorization"]["timeout"] == 5


def test_routes_name_every_replica_of_the_statefulset(conf: dict[str, Any]) -> None:
    sts = m.find(m.base_docs(), "StatefulSet", "nats-jetstream")
    svc = sts["spec"]["serviceName"]
    expected = [f"nats://nats-jetstream-{i}.{svc}:6222" for i in range(sts["spec"]["replicas"])]
    assert conf["cluster"]["routes"] == expected
    assert conf["cluster"]["listen"].endswith(":6222")
    assert conf["listen"].endswith(":4222")


@pytest.mark.parametrize("user", sorted(contract.SEED_PERMISSIONS))
def test_user_gets_its_seed_permissions(users: dict[str, dict[str, Any]], user: str) -> None:
    publish, subscribe = contract.SEED_PERMISSIONS[user]
    pub_allow, pub_deny = perms(users[user], "publish")
    sub_allow, sub_deny = perms(users[user], "subscribe")
    for subject in publish:
        assert contract.allowed(pub_allow, pub_deny, subject), f"{user} must publish {subject}"
        assert subject in pub_allow, f"{user}: the seed grants {subject} as such"
    for subject in subscribe:
        assert contract.allowed(sub_allow, sub_deny, subject), f"{user} must subscribe {subject}"
        assert subject in sub_allow, f"{user}: the seed grants {subject} as such"
    # Every JetStream client receives replies on its own inbox, and on nobody else's.
    assert f"_INBOX.{user}.>" in sub_allow
    assert "_INBOX.>" not in sub_allow


@pytest.mark.parametrize("user", sorted(contract.SEED_PERMISSIONS))
def test_extra_grants_are_jetstream_plumbing_dead_letters_or_own_state(
    users: dict[str, dict[str, Any]], user: str
) -> None:
    publish, subscribe = contract.SEED_PERMISSIONS[user]
    pub_allow, _ = perms(users[user], "publish")
    sub_allow, _ = perms(users[user], "subscribe")
    bucket = contract.STATE_BUCKETS.get(user)
    kv_stream = contract.KV_STREAMS.get(user)
    for subject in set(pub_allow) - set(publish):
        if bucket is not None and subject == f"$KV.{bucket}.>":
            continue  # the values of its own KV bucket, nothing else under $KV
        assert subject.startswith(("$JS.API.", "$JS.ACK.", "$JS.FC.")) or subject == contract.DLQ.get(user), (
            user,
            subject,
        )
        assert not subject.endswith("$JS.API.>"), f"{user} must not get the whole JetStream API"
        # Streams: look-ups; and reading (never creating, changing, purging, deleting) its own bucket.
        assert (
            not subject.startswith("$JS.API.STREAM.")
            or subject.startswith("$JS.API.STREAM.INFO.")
            or subject == f"$JS.API.STREAM.MSG.GET.{kv_stream}"
        ), (user, subject)
        assert (
            not subject.startswith("$JS.API.DIRECT.GET.")
            or subject.startswith(f"$JS.API.DIRECT.GET.{kv_stream}.$KV.{bucket}.")
            or subject in {f"$JS.API.DIRECT.GET.{s}" for s in contract.DIRECT_READS.get(user, ())}
        ), (user, subject)
    assert set(sub_allow) - set(subscribe) == {f"_INBOX.{user}.>"}


def test_only_the_correlator_reaches_its_state_bucket(users: dict[str, dict[str, Any]]) -> None:
    for owner, bucket in contract.STATE_BUCKETS.items():
        stream = contract.KV_STREAMS[owner]
        reads = [
            f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.DIRECT.GET.{stream}.$KV.{bucket}.snapshot.head",
            f"$JS.API.STREAM.MSG.GET.{stream}",
        ]  # fmt: skip
        # Old chunks are purged by name: the owner lists no keys, so it creates no consumer there.
        consumers = [f"$JS.API.CONSUMER.CREATE.{stream}", f"$JS.API.CONSUMER.INFO.{stream}.AbCdEf123"]
        writes = [f"$KV.{bucket}.snapshot.head", f"$KV.{bucket}.snapshot.3.0"]
        management = [f"$JS.API.STREAM.{op}.{stream}" for op in ("CREATE", "UPDATE", "DELETE", "PURGE")]
        for name, user in users.items():
            pub = perms(user, "publish")
            for subject in reads:  # nack and tapio-admin hold the whole JetStream API
                assert contract.allowed(*pub, subject) == (name in (owner, "nack", "tapio-admin")), (
                    name,
                    subject,
                )
            for subject in consumers:
                assert contract.allowed(*pub, subject) == (name in ("nack", "tapio-admin")), (name, subject)
            for subject in writes:
                assert contract.allowed(*pub, subject) == (name == owner), (name, subject)
            for subject in management:
                assert contract.allowed(*pub, subject) == (name in ("nack", "tapio-admin")), (name, subject)
            assert not contract.allowed(*pub, "$KV.SOMEONE_ELSE.key"), name


def test_tapio_users_cannot_reach_other_data(users: dict[str, dict[str, Any]]) -> None:
    probes = ["tapio.events.k8s.default.pods.created", "tapio.correlations.high.crash_loop",
              "tapio.alerts.critical.checkout", "tapio.processed.k8s.siem", "tapio.dlq.correlator"]  # fmt: skip
    for user, (publish, subscribe) in contract.SEED_PERMISSIONS.items():
        pub = perms(users[user], "publish")
        sub = perms(users[user], "subscribe")
        for subject in probes:
            may_pub = any(
                contract.subject_matches(p, subject) for p in publish
            ) or subject == contract.DLQ.get(user)
            may_sub = any(contract.subject_matches(s, subject) for s in subscribe)
            assert contract.allowed(*pub, subject) == may_pub, (user, "publish", subject)
            assert contract.allowed(*sub, subject) == may_sub, (user, "subscribe", subject)


@pytest.mark.parametrize("durable", sorted(contract.CONSUMERS))
def test_only_the_owner_pulls_from_a_durable_consumer(users: dict[str, dict[str, Any]], durable: str) -> None:
    stream, owner = contract.CONSUMERS[durable]
    next_msg = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
    ack = f"$JS.ACK.{stream}.{durable}.1.2.3.1700000000000000000.0"
    # (Re)creating it, with its filter subject (the form of the users' ephemeral-consumer grants).
    create = f"$JS.API.CONSUMER.CREATE.{stream}.{durable}.{stream_filter(stream)}"
    for name, user in users.items():
        pub = perms(user, "publish")
        # nack and tapio-admin hold the whole JetStream API; tapio-admin also acks (DLQ replay).
        assert contract.allowed(*pub, next_msg) == (name in (owner, "nack", "tapio-admin")), (name, next_msg)
        creators = {"nack", "tapio-admin"} | ({owner} - contract.NO_CONSUMER_CREATE)
        assert contract.allowed(*pub, create) == (name in creators), (name, create)
        assert contract.allowed(*pub, ack) == (name in (owner, "tapio-admin")), (name, ack)


def stream_filter(stream: str) -> str:
    (subject,) = contract.STREAMS[stream].subjects
    return subject


def test_no_user_has_a_password_the_certificate_is_the_identity(users: dict[str, dict[str, Any]]) -> None:
    """verify_and_map: each user is the DNS SAN of a client certificate; a password would be a
    second way in (and nats-server refuses a client that sends one), so no user has one, and the
    NATS servers get no password from any Secret."""
    for name, user in users.items():
        assert set(user) == {"user", "permissions"}, name
    sts = m.find(m.base_docs(), "StatefulSet", "nats-jetstream")
    env = m.env_of(m.pod_spec(sts)["containers"][0])
    assert not [e for e in env.values() if "secretKeyRef" in e.get("valueFrom", {})]
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_permissions_json_mirrors_auth_conf(users: dict[str, dict[str, Any]]) -> None:
    """permissions.json feeds nats-operator's clients-auth.json (make-secrets.sh, Terraform)."""
    mirror = json.loads((NATS_DIR / "permissions.json").read_text(encoding="utf-8"))["users"]
    assert mirror == {name: u["permissions"] for name, u in users.items()}


def test_statefulset_follows_the_seed(conf: dict[str, Any]) -> None:
    docs = m.base_docs()
    sts = m.find(docs, "StatefulSet", "nats-jetstream")
    spec = m.pod_spec(sts)
    nats = next(c for c in spec["containers"] if c["name"] == "nats")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["serviceName"] == "nats-jetstream"
    assert nats["image"] == "nats:2.10-alpine"
    assert nats["resources"] == {
        "requests": {"cpu": "200m", "memory": "512Mi"},
        "limits": {"cpu": "1000m", "memory": "2Gi"},
    }
    mounts = m.mounts_of(nats)
    volumes = m.volumes_of(sts)
    # The config file the container runs is the generated ConfigMap's nats.conf.
    config_dir = nats["command"][nats["command"].index("--config") + 1].rsplit("/", 1)[0]
    assert volumes[mounts[config_dir]["name"]]["configMap"]["name"] == "tapio-nats-config"
    # Every TLS file of nats.conf is an item of the mounted Secret.
    certs = volumes[mounts["/etc/nats-certs"]["name"]]["secret"]
    assert certs["secretName"] == "nats-server-tls"
    assert {f"/etc/nats-certs/{i['path']}" for i in certs["items"]} == {
        conf["tls"][k] for k in ("cert_file", "key_file", "ca_file")
    }
    # JetStream's store_dir is on the PersistentVolumeClaim "data".
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    data_mount = next(p for p, mount in mounts.items() if mount["name"] == claim["metadata"]["name"])
    assert conf["jetstream"]["store_dir"].startswith(data_mount + "/")
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    # The pid file used by the lame-duck preStop hook is on a writable volume.
    assert conf["pid_file"].rsplit("/", 1)[0] in mounts
    assert f"ldm={conf['pid_file']}" in " ".join(nats["lifecycle"]["preStop"]["exec"]["command"])


def test_services_and_disruption_budget_select_the_servers() -> None:
    docs = m.base_docs()
    labels = m.find(docs, "StatefulSet", "nats-jetstream")["spec"]["template"]["metadata"]["labels"]
    headless = m.find(docs, "Service", "nats-jetstream")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    client = m.find(docs, "Service", "tapio-nats")
    assert [p["port"] for p in client["spec"]["ports"]] == [4222]
    monitoring = m.find(docs, "Service", "nats-monitoring")
    assert monitoring["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "7777", "prometheus.io/path": "/metrics",
    }  # fmt: skip
    assert [(p["port"], p["targetPort"]) for p in monitoring["spec"]["ports"]] == [(7777, 7777)]
    exporter = next(
        c
        for c in m.pod_spec(m.find(docs, "StatefulSet", "nats-jetstream"))["containers"]
        if c["name"] == "metrics"
    )
    assert {"name": "metrics", "containerPort": 7777} in exporter["ports"]
    pdb = m.find(docs, "PodDisruptionBudget", "nats-jetstream")
    assert pdb["spec"]["maxUnavailable"] == 1
    for selector in (headless["spec"]["selector"], client["spec"]["selector"], monitoring["spec"]["selector"],
                     pdb["spec"]["selector"]["matchLabels"]):  # fmt: skip
        assert selector.items() <= labels.items()
