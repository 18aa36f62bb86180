"""Reads Tapio's Kubernetes manifests (infra/k8s): YAML documents, kustomization trees and kubectl-rendered
overlays. Used by the infra checks and by the production NATS cluster of the tests (natscluster), which
runs the files of infra/k8s/base/nats as the StatefulSet mounts them."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

INFRA = Path(__file__).absolute().parents[4] / "infra"  # the repository's infra/ (also in Bazel runfiles)
K8S = INFRA / "k8s"
BASE = K8S / "base"
OVERLAYS = ("local", "prod", "nats-operator", "external-nats")
KUBERNETES_VERSION = "1.32"  # the kind node image of infra/terraform/modules/cluster

# Tapio workloads: name -> (kind, NATS user, image). The users are those of auth.conf.
WORKLOADS: dict[str, tuple[str, str, str]] = {
    "tapio-k8s-collector": ("DaemonSet", "tapio-collectors", "tapio/k8s-collector"),
    "tapio-systemd-collector": ("DaemonSet", "tapio-collectors", "tapio/systemd-collector"),
    "tapio-ebpf-collector": ("DaemonSet", "tapio-collectors", "tapio/ebpf-collector"),
    "tapio-cni-collector": ("DaemonSet", "tapio-collectors", "tapio/cni-collector"),
    "tapio-correlator": ("Deployment", "tapio-correlation", "tapio/correlator"),
    "tapio-pipeline": ("Deployment", "tapio-pipeline", "tapio/pipeline"),
    "tapio-siem-exporter": ("Deployment", "tapio-siem-exporter", "tapio/siem-exporter"),
}


def client_secret(workload: str) -> str:
    """The Secret holding a workload's own client certificate (make-secrets.sh, Terraform)."""
    return "nats-client-" + workload.removeprefix("tapio-")


CRD_KINDS = {"Stream", "Consumer", "Account", "NatsCluster"}

Doc = dict[str, Any]


def load_docs(path: Path) -> list[Doc]:
    """The non-empty YAML documents of a file."""
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def kustomization_dirs() -> list[Path]:
    return sorted(p.parent for p in K8S.rglob("kustomization.yaml"))


def kustomization(directory: Path) -> Doc:
    docs = load_docs(directory / "kustomization.yaml")
    assert len(docs) == 1, f"{directory}/kustomization.yaml must hold one document"
    return docs[0]


def referenced_paths(directory: Path) -> list[tuple[str, Path]]:
    """(field, path) of every local file or directory a kustomization names."""
    k = kustomization(directory)
    refs: list[tuple[str, Path]] = [("resources", directory / r) for r in k.get("resources", [])]
    for patch in k.get("patches", []):
        if "path" in patch:
            refs.append(("patches", directory / patch["path"]))
    for field in ("configMapGenerator", "secretGenerator"):
        for gen in k.get(field, []):
            for entry in gen.get("files", []):
                refs.append((field, directory / str(entry).split("=", 1)[-1]))
    return refs


def resource_files(directory: Path) -> Iterator[Path]:
    """Every resource file of a kustomization tree, following resource directories (not patches)."""
    for field, path in referenced_paths(directory):
        if field != "resources":
            continue
        if path.is_dir():
            yield from resource_files(path)
        else:
            yield path


def resources(directory: Path) -> list[Doc]:
    """The documents of a kustomization tree as written (before kustomize transforms them)."""
    return [doc for f in resource_files(directory) for doc in load_docs(f)]


def base_docs() -> list[Doc]:
    return resources(BASE)


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def kubectl() -> str | None:
    return shutil.which("kubectl")


def render(directory: Path) -> list[Doc]:
    """`kubectl kustomize DIR` (the kustomize built into kubectl), parsed.

    Runs on a copy of infra/k8s with real files: kustomize does not follow the symlinks of a Bazel
    runfiles tree."""
    exe = kubectl()
    assert exe is not None
    with tempfile.TemporaryDirectory(prefix="tapio-k8s-") as tmp:
        copy = Path(tmp) / "k8s"
        shutil.copytree(K8S, copy, symlinks=False)
        target = copy / directory.relative_to(K8S)
        out = subprocess.run([exe, "kustomize", str(target)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, f"kubectl kustomize {directory} failed: {out.stderr.strip()}"
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def pod_spec(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def volumes_of(doc: Doc) -> dict[str, Doc]:
    return {v["name"]: v for v in pod_spec(doc).get("volumes", [])}


def mounts_of(container: Doc) -> dict[str, Doc]:
    """mountPath -> volumeMount."""
    return {m["mountPath"]: m for m in container.get("volumeMounts", [])}


def secret_refs(doc: Doc) -> set[tuple[str, str]]:
    """(secret name, key) pairs a workload reads through env secretKeyRef or secret volume items."""
    refs: set[tuple[str, str]] = set()
    spec = pod_spec(doc)
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs.add((ref["name"], ref["key"]))
    for v in spec.get("volumes", []):
        if "secret" in v:
            for item in v["secret"].get("items", []):
                refs.add((v["secret"]["secretName"], item["key"]))
    return refs
