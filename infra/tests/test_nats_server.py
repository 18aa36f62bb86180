"""A real 3-node nats-server cluster runs the production config: streams from the manifests, each user's flow.

Every workload connects the way its manifest says (its own TLS client certificate from the Secrets
make-secrets.sh writes, mapped by the servers to its NATS user; no password), so a permission a
component really needs but auth.conf forgot, or a grant it must not have, shows up here as a failure.
"""

from __future__ import annotations

import argparse
import shutil
import ssl
import uuid
from pathlib import Path
from typing import Any

import anyio
import nats.errors
import pytest
from nats.js import api

from infra.tests import contract
from infra.tests.natsflow import eventually, expect_denied, violation
from tapio_common.config import TlsConfig, load_common
from tapio_common.nats.connect import connect
from tapio_testing import manifests as m
from tapio_testing.natscluster import NatsCluster
from tapio_testing.natsidentity import Identity, Secrets, client_identity, workload_env
from tapio_testing.natsprovision import connected, consumer_config, consumer_spec, nack_identity

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="make-secrets.sh needs openssl"),
]


def event_id() -> str:
    return uuid.uuid4().hex


async def test_streams_and_consumers_of_the_manifests_are_accepted(
    cluster: NatsCluster, secrets: Secrets, tmp_path: Path
) -> None:
    async with connected(cluster, nack_identity(secrets, tmp_path)) as nc:
        jsm = nc.jsm()
        for name, want in contract.STREAMS.items():
            info = await jsm.stream_info(name)
            cfg = info.config
            assert cfg.subjects == list(want.subjects)
            assert cfg.storage == api.StorageType.FILE
            assert cfg.num_replicas == contract.REPLICAS
            assert info.cluster is not None
            assert len(info.cluster.replicas or []) == contract.REPLICAS - 1
            assert cfg.max_age == want.max_age_s
            assert cfg.duplicate_window == contract.DUPLICATE_WINDOW_S
            assert (cfg.max_msgs, cfg.max_bytes, cfg.max_msg_size) == (
                want.max_msgs or -1, want.max_bytes or -1, want.max_msg_size or -1,
            )  # fmt: skip
        for durable, (stream, _) in contract.CONSUMERS.items():
            c = (await jsm.consumer_info(stream, durable)).config
            assert (c.ack_policy, c.max_deliver, c.deliver_subject) == (
                api.AckPolicy.EXPLICIT,
                contract.MAX_DELIVER,
                None,
            )


async def test_collectors_publish_events_and_nothing_else(
    cluster: NatsCluster, identities: dict[str, Identity]
) -> None:
    errors: list[str] = []
    for name in (
        "tapio-k8s-collector",
        "tapio-systemd-collector",
        "tapio-ebpf-collector",
        "tapio-cni-collector",
    ):
        async with connected(cluster, identities[name], errors) as nc:
            js = nc.jetstream(timeout=2)
            await js.stream_info("TAPIO_EVENTS")
            msg_id = event_id()
            ack = await js.publish(
                "tapio.events.k8s.default.pods.created", b"{}", headers={"Nats-Msg-Id": msg_id}
            )
            assert ack.stream == "TAPIO_EVENTS"
            assert not ack.duplicate
            again = await js.publish(
                "tapio.events.k8s.default.pods.created", b"{}", headers={"Nats-Msg-Id": msg_id}
            )
            assert again.duplicate, "the 2m duplicate window drops a re-published event"
            if name != "tapio-k8s-collector":
                continue  # the same NATS user: one collector shows what it may not do
            for subject in ("tapio.correlations.high.crash_loop", "tapio.dlq.correlator"):
                await expect_denied(errors, subject, js.publish(subject, b"{}", timeout=0.5))
            delete = "$JS.API.STREAM.DELETE.TAPIO_EVENTS"
            await expect_denied(errors, delete, nc.request(delete, b"", timeout=0.5))
            errors.clear()
            await nc.subscribe("tapio.events.>")
            await violation(errors, "subscription", "tapio.events.>")


async def pull_one(js: Any, stream: str, durable: str, marker: bytes) -> Any:
    """Fetches from a durable consumer until the message with `marker` arrives; acks all it sees."""
    psub = await js.pull_subscribe_bind(durable=durable, stream=stream)
    with anyio.fail_after(20):
        while True:
            try:
                batch = await psub.fetch(batch=100, timeout=1)
            except nats.errors.TimeoutError:
                continue
            for msg in batch:
                assert msg.reply.startswith(f"$JS.ACK.{stream}.{durable}."), msg.reply
                await msg.ack_sync()
                if msg.data == marker:
                    return msg


@pytest.mark.parametrize(
    ("workload", "stream", "durable", "source", "output", "dlq"),
    [
        ("tapio-correlator", "TAPIO_EVENTS", "correlator", "tapio.events.k8s.default.pods.oom_killed",
         "tapio.correlations.high.crash_loop", "tapio.dlq.correlator"),
        ("tapio-pipeline", "TAPIO_EVENTS", "pipeline", "tapio.events.systemd.nginx.failed",
         "tapio.processed.systemd.siem", "tapio.dlq.pipeline"),
        ("tapio-siem-exporter", "TAPIO_CORRELATIONS", "siem-exporter", "tapio.correlations.medium.node_failure",
         "tapio.alerts.critical.checkout", "tapio.dlq.siem-exporter"),
    ],
)  # fmt: skip
async def test_consumer_workload_flow(
    cluster: NatsCluster, identities: dict[str, Identity], workload: str, stream: str, durable: str,
    source: str, output: str, dlq: str,
) -> None:  # fmt: skip
    marker = event_id().encode()
    producer = "tapio-correlator" if stream == "TAPIO_CORRELATIONS" else "tapio-k8s-collector"
    async with connected(cluster, identities[producer]) as up:
        await up.jetstream(timeout=2).publish(source, marker, headers={"Nats-Msg-Id": marker.decode()})
    errors: list[str] = []
    async with connected(cluster, identities[workload], errors) as nc:
        js = nc.jetstream(timeout=2)
        # Binding to (or re-declaring, except the correlator: no consumer creation at all) its own
        # durable consumer works; the message flows; results go out.
        own = consumer_config(consumer_spec(durable))
        if workload in contract.NO_CONSUMER_CREATE_WORKLOADS:
            create = f"$JS.API.CONSUMER.CREATE.{stream}.{durable}" + (
                f".{own.filter_subject}" if own.filter_subject else ""
            )
            await expect_denied(errors, create, nc.jsm().add_consumer(stream, own, timeout=0.5))
        else:
            await nc.jsm().add_consumer(stream, own)
        got = await pull_one(js, stream, durable, marker)
        assert got.subject == source
        assert (await js.publish(output, marker)).stream == f"TAPIO_{output.split('.')[1].upper()}"
        assert (await js.publish(dlq, marker, headers={"Tapio-Error": "test"})).stream == "TAPIO_DLQ"
        # ... and nothing of the others.
        others = [d for d in contract.CONSUMERS if d != durable]
        for other in others:
            other_stream = contract.CONSUMERS[other][0]
            psub = await js.pull_subscribe_bind(durable=other, stream=other_stream)
            next_msg = f"$JS.API.CONSUMER.MSG.NEXT.{other_stream}.{other}"
            await expect_denied(errors, next_msg, psub.fetch(1, timeout=0.5))
            other_spec = consumer_spec(other)
            one_filter = other_spec.get("filterSubject")
            create = f"$JS.API.CONSUMER.CREATE.{other_stream}.{other}" + (
                f".{one_filter}" if one_filter else ""
            )
            await expect_denied(
                errors, create, nc.jsm().add_consumer(other_stream, consumer_config(other_spec), timeout=0.5)
            )
        for subject in ("tapio.events.k8s.x.pods.created", "tapio.dlq.someone-else"):
            await expect_denied(errors, subject, js.publish(subject, b"{}", timeout=0.5))


async def test_readers_get_alerts_but_not_the_exporters_messages(
    cluster: NatsCluster, secrets: Secrets, tmp_path: Path
) -> None:
    marker = event_id().encode()
    admin = client_identity(secrets, "admin", "tapio-admin", tmp_path / "admin")
    async with connected(cluster, admin) as nc:
        await nc.jetstream(timeout=2).publish("tapio.alerts.warning.checkout", marker)
    reader = client_identity(secrets, "readers", "tapio-consumers", tmp_path / "readers")
    errors: list[str] = []
    async with connected(cluster, reader, errors) as nc:
        js = nc.jetstream(timeout=2)
        # Its own ordered (ephemeral, server-named) consumer, delivering into its own inbox.
        sub = await js.subscribe("tapio.alerts.>", stream="TAPIO_ALERTS", ordered_consumer=True)
        with anyio.fail_after(20):
            seen: list[bytes] = []
            while marker not in seen:
                seen.append((await sub.next_msg(timeout=10)).data)
        await sub.unsubscribe()
        exporter = await js.pull_subscribe_bind(durable="siem-exporter", stream="TAPIO_CORRELATIONS")
        next_msg = "$JS.API.CONSUMER.MSG.NEXT.TAPIO_CORRELATIONS.siem-exporter"
        await expect_denied(errors, next_msg, exporter.fetch(1, timeout=0.5))
        for subject in ("tapio.events.k8s.x.pods.created", "tapio.alerts.critical.forged"):
            await expect_denied(errors, subject, js.publish(subject, b"{}", timeout=0.5))


async def test_the_client_certificate_is_the_identity(
    cluster: NatsCluster, identities: dict[str, Identity]
) -> None:
    """verify_and_map: a certificate is required, it alone says who the client is, and no password
    (the workload's own user's, or another user's name with any password) gets past it."""
    good = identities["tapio-pipeline"]
    without_cert = Identity(good.user, TlsConfig(ca=good.tls.ca))
    # With TLS 1.3 the client learns of the refusal as an alert or as a reset; the server says why.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        async with connected(cluster, without_cert):
            pass
    refused = "client didn't provide a certificate"
    await eventually(lambda: any(refused in cluster.log(n) for n in cluster.nodes), f"server log: {refused}")
    collector = identities["tapio-ebpf-collector"]
    for who, cert in (
        ("tapio-pipeline", good.tls),  # its own user and a password: a password is no identity
        ("tapio-correlation", collector.tls),  # a collector's certificate claiming the correlator's user
        ("tapio-admin", collector.tls),
    ):
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            async with connected(cluster, Identity(who, cert, password="p" + "x" * 40)):
                pass
    async with connected(cluster, good) as nc:
        assert nc.is_connected
        assert nc.connected_url is not None
        assert nc.connected_url.scheme == "nats"


@pytest.mark.parametrize("workload", sorted(m.WORKLOADS))
async def test_each_workloads_certificate_acts_as_its_own_user_only(
    cluster: NatsCluster, identities: dict[str, Identity], workload: str
) -> None:
    """The server maps each workload's certificate to the user its manifest names, and to nothing
    else: the ebpf collector's certificate publishes events but cannot publish correlations, the
    correlator's cannot publish events, and each receives replies on its own user's inbox only."""
    user = m.WORKLOADS[workload][1]
    ident = identities[workload]
    assert (ident.user, ident.password) == (user, None)
    errors: list[str] = []
    async with connected(cluster, ident, errors) as nc:
        js = nc.jetstream(timeout=2)
        own = {
            "tapio-collectors": ("tapio.events.k8s.ident.pods.created", "tapio.correlations.high.forged"),
            "tapio-correlation": ("tapio.correlations.high.ident", "tapio.events.k8s.forged.pods.created"),
            "tapio-pipeline": ("tapio.processed.k8s.ident", "tapio.correlations.high.forged"),
            "tapio-siem-exporter": ("tapio.alerts.critical.ident", "tapio.correlations.high.forged"),
        }
        allowed, forbidden = own[user]
        assert (await js.publish(allowed, b"{}")).stream.startswith("TAPIO_")  # a reply in _INBOX.<user>
        await expect_denied(errors, forbidden, js.publish(forbidden, b"{}", timeout=0.5))
        other = "_INBOX.tapio-correlation.>" if user != "tapio-correlation" else "_INBOX.tapio-collectors.>"
        errors.clear()
        await nc.subscribe(other)
        await violation(errors, "subscription", other)


async def test_no_user_reads_another_users_replies(
    cluster: NatsCluster, identities: dict[str, Identity]
) -> None:
    """Each user receives replies on `_INBOX.<user>.>` only: the others' inboxes (pulled messages, KV
    reads, API answers) and the shared `_INBOX.>` are refused, while its own inbox keeps working."""
    errors: list[str] = []
    async with connected(cluster, identities["tapio-ebpf-collector"], errors) as nc:
        assert (await nc.jetstream(timeout=2).stream_info("TAPIO_EVENTS")).config.name == "TAPIO_EVENTS"
        for inbox in ("_INBOX.tapio-siem-exporter.>", "_INBOX.tapio-correlation.>", "_INBOX.>"):
            errors.clear()
            await nc.subscribe(inbox)
            await violation(errors, "subscription", inbox)
    for workload in ("tapio-correlator", "tapio-pipeline", "tapio-siem-exporter"):
        errors.clear()
        async with connected(cluster, identities[workload], errors) as nc:
            await nc.subscribe("_INBOX.tapio-collectors.>")
            await violation(errors, "subscription", "_INBOX.tapio-collectors.>")


async def test_readers_cannot_leave_durable_consumers(
    cluster: NatsCluster, secrets: Secrets, tmp_path: Path
) -> None:
    reader = client_identity(secrets, "readers", "tapio-consumers", tmp_path / "readers")
    errors: list[str] = []
    async with connected(cluster, reader, errors) as nc:
        jsm = nc.jsm()
        # The durable forms are not granted at all ...
        for name, config in (
            ("$JS.API.CONSUMER.DURABLE.CREATE.TAPIO_ALERTS.mine", api.ConsumerConfig(durable_name="mine")),
            ("$JS.API.CONSUMER.CREATE.TAPIO_ALERTS.mine", api.ConsumerConfig(name="mine")),
        ):
            await expect_denied(errors, name, jsm.add_consumer("TAPIO_ALERTS", config, timeout=0.5))
        # ... and the server-named form refuses a durable name in the request.
        request = b'{"stream_name":"TAPIO_ALERTS","config":{"durable_name":"mine","ack_policy":"explicit"}}'
        reply = await nc.request("$JS.API.CONSUMER.CREATE.TAPIO_ALERTS", request, timeout=2)
        assert b"consumer expected to be ephemeral" in reply.data, reply.data
        # An ordered (ephemeral) consumer still reads.
        sub = await nc.jetstream(timeout=2).subscribe(
            "tapio.alerts.>", stream="TAPIO_ALERTS", ordered_consumer=True
        )
        await sub.unsubscribe()


async def test_exporter_sink_consumers_and_alert_read_back(
    cluster: NatsCluster, identities: dict[str, Identity]
) -> None:
    """The SIEM exporter creates one durable consumer per sink on TAPIO_ALERTS (siem-exporter-<sink>:
    a sink's position, reset after each confirmed batch; on nats-server < 2.14 it pulls and acks
    through it instead, as here), and reads recent alerts back through a server-named ephemeral one."""
    marker = event_id().encode()
    errors: list[str] = []
    async with connected(cluster, identities["tapio-siem-exporter"], errors) as nc:
        js = nc.jetstream(timeout=2)
        await js.publish("tapio.alerts.critical.checkout", marker, headers={"Nats-Msg-Id": marker.decode()})
        sink = api.ConsumerConfig(
            durable_name="siem-exporter-splunk", filter_subject="tapio.alerts.>", ack_policy=api.AckPolicy.EXPLICIT,
            max_deliver=-1, ack_wait=30,
        )  # fmt: skip
        await nc.jsm().add_consumer("TAPIO_ALERTS", sink)
        got = await pull_one(js, "TAPIO_ALERTS", "siem-exporter-splunk", marker)
        assert got.subject == "tapio.alerts.critical.checkout"
        reader = await js.pull_subscribe(
            "tapio.alerts.>", durable=None, stream="TAPIO_ALERTS",
            config=api.ConsumerConfig(ack_policy=api.AckPolicy.NONE, inactive_threshold=60),
        )  # fmt: skip
        with anyio.fail_after(20):
            seen: list[bytes] = []
            while marker not in seen:
                seen += [m.data for m in await reader.fetch(100, timeout=5)]
        # ... and not the correlator's input
        psub = await js.pull_subscribe_bind(durable="correlator", stream="TAPIO_EVENTS")
        await expect_denied(
            errors, "$JS.API.CONSUMER.MSG.NEXT.TAPIO_EVENTS.correlator", psub.fetch(1, timeout=0.5)
        )


async def test_pipeline_follows_pod_events_with_an_ordered_consumer(
    cluster: NatsCluster, identities: dict[str, Identity]
) -> None:
    """The pipeline's pod-index follower: an ordered consumer over the pod subjects, as its own user."""
    marker = event_id().encode()
    async with connected(cluster, identities["tapio-k8s-collector"]) as up:
        await up.jetstream(timeout=2).publish("tapio.events.k8s.shop.pods.updated", marker)
    errors: list[str] = []
    async with connected(cluster, identities["tapio-pipeline"], errors) as nc:
        js = nc.jetstream(timeout=2)
        sub = await js.subscribe("tapio.events.k8s.*.pods.*", stream="TAPIO_EVENTS", ordered_consumer=True)
        with anyio.fail_after(20):
            while (await sub.next_msg(timeout=10)).data != marker:
                pass
        await sub.unsubscribe()
        request = b'{"stream_name":"TAPIO_EVENTS","config":{"durable_name":"mine","ack_policy":"explicit"}}'
        reply = await nc.request("$JS.API.CONSUMER.CREATE.TAPIO_EVENTS", request, timeout=2)
        assert b"consumer expected to be ephemeral" in reply.data, reply.data


@pytest.mark.parametrize("workload", sorted(m.WORKLOADS))
async def test_components_connect_with_their_manifest_environment(
    cluster: NatsCluster, secrets: Secrets, tmp_path: Path, workload: str
) -> None:
    """The component's own config loader and connect (tapio_common) with the manifest's environment:
    the certificate of its Secret, NATS_IDENTITY for the inbox, nothing sent but the certificate."""
    env = {**workload_env(workload, secrets, tmp_path), "NATS_URL": ",".join(cluster.urls)}
    cfg = load_common(argparse.Namespace(), workload, env=env).nats
    assert (cfg.user, cfg.password, cfg.identity) == (None, None, m.WORKLOADS[workload][1])
    nc = await connect(cfg, workload)
    try:
        stream = "TAPIO_CORRELATIONS" if workload == "tapio-siem-exporter" else "TAPIO_EVENTS"
        # An API request: its answer comes back on _INBOX.<user>, the only inbox the user may read.
        assert (await nc.jetstream(timeout=2).stream_info(stream)).config.name == stream
        assert nc._inbox_prefix.decode() == f"_INBOX.{cfg.identity}"  # what nats-py uses
    finally:
        await nc.close()
