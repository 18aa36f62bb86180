"""The Kubernetes manifests: kustomize trees resolve, schemas validate offline, workloads are wired right."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import pytest

from infra.tests import contract, crd_schemas
from tapio_testing import manifests as m

RESOURCE_FILES = sorted({f for d in m.kustomization_dirs() for f in m.resource_files(d)})
RESOURCE_DOCS = [(f, doc) for f in RESOURCE_FILES for doc in m.load_docs(f)]


def _param(f: Path, doc: dict[str, Any]) -> Any:
    return pytest.param(doc, id=f"{f.relative_to(m.K8S)}:{doc['kind']}/{doc['metadata']['name']}")


BUILTIN_DOCS = [_param(f, d) for f, d in RESOURCE_DOCS if d["kind"] not in m.CRD_KINDS]
CUSTOM_DOCS = [_param(f, d) for f, d in RESOURCE_DOCS if d["kind"] in m.CRD_KINDS]


def validate_builtin(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, m.KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("directory", m.kustomization_dirs(), ids=lambda p: str(p.relative_to(m.K8S)))
def test_kustomization_references_exist(directory: Path) -> None:
    refs = m.referenced_paths(directory)
    assert refs, f"{directory} references nothing"
    for field, path in refs:
        assert "://" not in str(path), f"{directory}: remote {field} {path} cannot be checked offline"
        assert path.exists(), f"{directory}: {field} entry {path} does not exist"
        assert Path(os.path.normpath(path)).is_relative_to(m.K8S), f"{directory}: {path} is outside infra/k8s"
        if path.is_dir():
            assert (path / "kustomization.yaml").is_file(), (
                f"{path} is a directory without kustomization.yaml"
            )


def test_every_manifest_file_is_used() -> None:
    used = {Path(os.path.normpath(p)) for d in m.kustomization_dirs() for _, p in m.referenced_paths(d)}
    files = [p for p in m.K8S.rglob("*") if p.suffix in {".yaml", ".conf"} and p.name != "kustomization.yaml"]
    unused = sorted(str(p.relative_to(m.K8S)) for p in files if p not in used)
    assert unused == [], f"files no kustomization uses: {unused}"


@pytest.mark.parametrize("doc", BUILTIN_DOCS)
def test_builtin_manifest_validates_against_kubernetes_schema(doc: dict[str, Any]) -> None:
    validate_builtin(doc)


def test_schema_validation_is_strict() -> None:
    """Negative control: the validator rejects a misspelled field, so passing means something."""
    doc = copy.deepcopy(m.find(m.base_docs(), "Deployment", "tapio-correlator"))
    doc["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {
        "httpGet": {"path": "/healthz", "port": 7777}
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_builtin(doc)


def test_custom_kinds_have_no_kubernetes_schema() -> None:
    """Stream, Consumer, Account and NatsCluster are checked against crd_schemas instead."""
    kinds = {d["kind"] for _, d in RESOURCE_DOCS}
    assert kinds >= m.CRD_KINDS
    for kind in m.CRD_KINDS:
        doc = next(d for _, d in RESOURCE_DOCS if d["kind"] == kind)
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            validate_builtin(doc)


@pytest.mark.parametrize("doc", CUSTOM_DOCS)
def test_custom_resource_matches_its_definition(doc: dict[str, Any]) -> None:
    jsonschema.validate(doc, crd_schemas.BY_KIND[doc["kind"]])


def test_seed_natscluster_form_is_not_a_valid_natscluster() -> None:
    """Why overlays/nats-operator differs from the seed: `jetstream` and `auth.enabled` do not exist."""
    seed = {
        "apiVersion": "nats.io/v1alpha2",
        "kind": "NatsCluster",
        "metadata": {"name": "tapio-nats"},
        "spec": {
            "size": 3,
            "version": "2.10.0",
            "jetstream": {"enabled": True, "fileStorage": {"size": "10Gi", "storageClass": "fast-ssd"}},
            "auth": {"enabled": True, "timeout": "5s"},
        },
    }
    with pytest.raises(jsonschema.ValidationError, match="jetstream"):
        jsonschema.validate(seed, crd_schemas.NATS_CLUSTER)


def test_streams_have_the_contract_limits() -> None:
    streams = {d["spec"]["name"]: d["spec"] for d in m.base_docs() if d["kind"] == "Stream"}
    assert set(streams) == set(contract.STREAMS) | set(contract.KV_STREAMS.values())
    for name, want in contract.STREAMS.items():
        spec = streams[name]
        assert tuple(spec["subjects"]) == want.subjects, name
        assert contract.go_duration_s(spec["maxAge"]) == want.max_age_s, name
        assert spec.get("maxMsgs") == want.max_msgs, name
        assert spec.get("maxBytes") == want.max_bytes, name
        assert spec.get("maxMsgSize") == want.max_msg_size, name
        assert (spec["storage"], spec["replicas"]) == ("file", contract.REPLICAS), name
        assert (spec["retention"], spec["discard"]) == ("limits", "old"), name
        assert contract.go_duration_s(spec["duplicateWindow"]) == contract.DUPLICATE_WINDOW_S, name
        assert spec["account"] == "tapio", name


@pytest.mark.parametrize("user", sorted(contract.STATE_BUCKETS))
def test_state_bucket_is_declared_as_a_kv_bucket(user: str) -> None:
    """NACK creates the bucket's stream in the layout NATS clients open as a KV bucket (nats-py's
    key_value(), nats.go's KeyValue()): history 1, file storage, replicas 3."""
    bucket, name = contract.STATE_BUCKETS[user], contract.KV_STREAMS[user]
    (spec,) = [d["spec"] for d in m.base_docs() if d["kind"] == "Stream" and d["spec"]["name"] == name]
    assert spec["subjects"] == [f"$KV.{bucket}.>"]
    assert spec["maxMsgsPerSubject"] == 1, "history 1"
    assert (spec["storage"], spec["replicas"]) == ("file", contract.REPLICAS)
    assert (spec["retention"], spec["discard"]) == ("limits", "new")
    assert spec["allowRollup"] is spec["denyDelete"] is spec["allowDirect"] is True
    assert contract.go_duration_s(spec["duplicateWindow"]) == contract.DUPLICATE_WINDOW_S
    assert "maxAge" not in spec, "snapshots do not expire"
    assert spec["account"] == "tapio"


def test_consumers_are_durable_pull_with_explicit_ack() -> None:
    consumers = {d["spec"]["durableName"]: d["spec"] for d in m.base_docs() if d["kind"] == "Consumer"}
    assert set(consumers) == set(contract.CONSUMERS)
    for durable, (stream, _) in contract.CONSUMERS.items():
        spec = consumers[durable]
        assert spec["streamName"] == stream
        assert spec["ackPolicy"] == "explicit"
        assert spec["maxDeliver"] == contract.MAX_DELIVER
        assert contract.go_duration_s(spec["ackWait"]) > 0
        assert "deliverSubject" not in spec, f"{durable} must be a pull consumer"
        stream_subjects = contract.STREAMS[stream].subjects
        filters = spec.get("filterSubjects") or [spec["filterSubject"]]
        assert ("filterSubject" in spec) != ("filterSubjects" in spec), f"{durable}: one filter form"
        for f in filters:
            assert any(contract.subject_matches(s, f) for s in stream_subjects), f"{durable}: {f}"
        assert spec["account"] == "tapio"


def test_account_reaches_the_client_service_with_nack_credentials() -> None:
    account = m.find(m.base_docs(), "Account", "tapio")["spec"]
    assert account["servers"] == ["nats://tapio-nats:4222"]
    # NACK's own certificate is its identity (mapped to user nack): no user or password.
    assert account["tls"] == {
        "secret": {"name": "nats-client-nack"},
        "ca": "ca.crt",
        "cert": "tls.crt",
        "key": "tls.key",
    }
    assert "user" not in account


@pytest.mark.parametrize("name", sorted(m.WORKLOADS))
def test_workload_is_wired_to_nats_and_monitoring(name: str) -> None:
    kind, user, image = m.WORKLOADS[name]
    doc = m.find(m.base_docs(), kind, name)
    spec = m.pod_spec(doc)
    (container,) = spec["containers"]
    env = m.env_of(container)
    assert env["NATS_URL"]["value"] == "nats://tapio-nats:4222"
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env["TAPIO_METRICS_PORT"]["value"] == "7777"
    # The certificate is the identity (verify_and_map): no user or password is sent, and
    # NATS_IDENTITY names the user it maps to, for the reply inbox _INBOX.<user>.
    assert not {"NATS_USER", "NATS_PASSWORD"} & set(env)
    assert env["NATS_IDENTITY"] == {"name": "NATS_IDENTITY", "value": user}
    assert container["image"] == f"{image}:latest"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 7777}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 7777}
    assert {"name": "metrics", "containerPort": 7777} in container["ports"]
    annotations = doc["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "7777",
        "prometheus.io/path": "/metrics",
    }
    # Seed: mounted at /etc/nats-creds, from the workload's own Secret; the TLS variables point at its files.
    mounts = m.mounts_of(container)
    creds = m.volumes_of(doc)[mounts["/etc/nats-creds"]["name"]]
    assert creds["secret"]["secretName"] == m.client_secret(name)
    assert m.secret_refs(doc) == {(m.client_secret(name), k) for k in ("ca.crt", "tls.crt", "tls.key")}
    files = {f"/etc/nats-creds/{i['path']}" for i in creds["secret"]["items"]}
    assert {env[v]["value"] for v in ("NATS_TLS_CA", "NATS_TLS_CERT", "NATS_TLS_KEY")} == files
    # The spool/state directory is a volume, not the (read-only) image filesystem.
    assert env["TAPIO_DATA_DIR"]["value"] in mounts
    assert spec["serviceAccountName"] == name
    assert (
        doc["spec"]["selector"]["matchLabels"].items()
        <= doc["spec"]["template"]["metadata"]["labels"].items()
    )


def test_collectors_are_daemonsets_with_a_node_spool() -> None:
    docs = m.base_docs()
    for name in ("tapio-systemd-collector", "tapio-ebpf-collector", "tapio-cni-collector"):
        doc = m.find(docs, "DaemonSet", name)
        spool = m.volumes_of(doc)["spool"]
        assert spool["hostPath"] == {
            "path": f"/var/lib/tapio/{name.removeprefix('tapio-')}",
            "type": "DirectoryOrCreate",
        }
    k8s = m.find(docs, "DaemonSet", "tapio-k8s-collector")
    assert "emptyDir" in m.volumes_of(k8s)["spool"]


def test_only_the_ebpf_collector_is_privileged() -> None:
    docs = m.base_docs()
    ebpf = m.find(docs, "DaemonSet", "tapio-ebpf-collector")
    spec = m.pod_spec(ebpf)
    (container,) = spec["containers"]
    assert spec["hostPID"] is True
    assert container["securityContext"]["privileged"] is True
    mounts = m.mounts_of(container)
    host_paths = {v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    for path in ("/sys/kernel/debug", "/sys/kernel/tracing", "/lib/modules", "/usr/src"):
        assert path in mounts, path
        assert path in host_paths, path
    assert mounts["/lib/modules"]["readOnly"]
    assert mounts["/usr/src"]["readOnly"]
    for name in set(m.WORKLOADS) - {"tapio-ebpf-collector"}:
        other = m.pod_spec(m.find(docs, m.WORKLOADS[name][0], name))
        assert not other.get("hostPID"), name
        sc = other["containers"][0]["securityContext"]
        assert not sc.get("privileged"), name
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["capabilities"] == {"drop": ["ALL"]}, name


def test_rbac_is_least_privilege() -> None:
    docs = m.base_docs()
    role = m.find(docs, "ClusterRole", "tapio-k8s-collector")
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == {
        ("", "pods"), ("", "nodes"), ("", "services"), ("", "endpoints"), ("", "events"),
        ("events.k8s.io", "events"), ("apps", "deployments"), ("apps", "replicasets"),
    }  # fmt: skip
    assert all(sorted(rule["verbs"]) == ["get", "list", "watch"] for rule in role["rules"])
    bindings = [d for d in docs if d["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    assert [(b["metadata"]["name"], b["subjects"]) for b in bindings] == [
        (
            "tapio-k8s-collector",
            [{"kind": "ServiceAccount", "name": "tapio-k8s-collector", "namespace": "tapio"}],
        )
    ]
    for sa in (d for d in docs if d["kind"] == "ServiceAccount"):
        if sa["metadata"]["name"] != "tapio-k8s-collector":
            assert sa["automountServiceAccountToken"] is False, sa["metadata"]["name"]


needs_kubectl = pytest.mark.skipif(
    m.kubectl() is None, reason="kubectl (with its built-in kustomize) not installed"
)


@needs_kubectl
@pytest.mark.parametrize("overlay", m.OVERLAYS)
def test_overlay_renders_and_validates(overlay: str) -> None:
    docs = m.render(m.K8S / "overlays" / overlay)
    secrets = {"nats-server-tls", "nats-clients-auth", "nats-operator-passwords"}
    for doc in docs:
        if doc["kind"] in m.CRD_KINDS:
            jsonschema.validate(doc, crd_schemas.BY_KIND[doc["kind"]])
        else:
            validate_builtin(doc)
        if doc["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == "tapio", (
                f"{overlay}: {doc['kind']}/{doc['metadata']['name']}"
            )
        if doc["kind"] in ("DaemonSet", "Deployment", "StatefulSet"):
            # a workload reads its own client certificate only; the operators' is read by nobody
            name = doc["metadata"]["name"]
            own = {m.client_secret(name)} if name in m.WORKLOADS else set()
            assert {secret for secret, _ in m.secret_refs(doc)} <= secrets | own, (overlay, name)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {(kind, name) for name, (kind, _, _) in m.WORKLOADS.items()} <= names
    # Exactly one NATS: the StatefulSet, the NatsCluster, or none (installed by Terraform's Helm release).
    nats = names & {("StatefulSet", "nats-jetstream"), ("NatsCluster", "tapio-nats")}
    expected_nats = {"local": "StatefulSet", "prod": "StatefulSet", "nats-operator": "NatsCluster"}.get(
        overlay
    )
    assert {kind for kind, _ in nats} == ({expected_nats} if expected_nats else set())
    tags = {c["image"].rsplit(":", 1)[1] for d in docs if d["kind"] in ("DaemonSet", "Deployment")
            for c in m.pod_spec(d)["containers"]}  # fmt: skip
    assert tags == {"local": {"dev"}, "prod": {"0.1.0"}}.get(overlay, {"latest"})


@needs_kubectl
def test_prod_overlay_pins_nats_storage_and_spreads_servers() -> None:
    sts = m.find(m.render(m.K8S / "overlays" / "prod"), "StatefulSet", "nats-jetstream")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast-ssd"
    anti = m.pod_spec(sts)["affinity"]["podAntiAffinity"]
    assert list(anti) == ["requiredDuringSchedulingIgnoredDuringExecution"]


def test_consumer_filters_are_those_of_the_stream_layout() -> None:
    """NACK creates the durable consumers in a cluster; `tapio-admin streams apply` elsewhere: the same filters."""
    from tapio_jetstream.layout import production_layout

    consumers = {d["spec"]["durableName"]: d["spec"] for d in m.base_docs() if d["kind"] == "Consumer"}
    for spec in production_layout().consumers:
        manifest = consumers[spec.durable]
        assert tuple(manifest.get("filterSubjects") or [manifest["filterSubject"]]) == spec.server_subjects, (
            spec.durable
        )


def test_atomic_publish_is_allowed_where_the_stream_layout_allows_it() -> None:
    """The exporter publishes its alerts in atomic batches: the manifest's stream must allow them."""
    from tapio_jetstream.layout import production_layout

    streams = {d["spec"]["name"]: d["spec"] for d in m.base_docs() if d["kind"] == "Stream"}
    for spec in production_layout().streams:
        assert bool(streams[spec.name].get("allowAtomicPublish")) is spec.allow_atomic, spec.name
