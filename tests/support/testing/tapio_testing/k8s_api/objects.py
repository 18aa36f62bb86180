"""Realistic Kubernetes objects for tests and benchmarks: the recorded objects under recorded/
(one of each kind, as `kubectl get -o json` shows them, managedFields removed), copied with new
names, and the status transitions the kubelet and controllers really make (restart, CrashLoopBackOff,
OOMKilled, readiness lost, eviction, node conditions, rollouts)."""

from __future__ import annotations

import copy
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

Obj = dict[str, Any]
RECORDED = Path(__file__).with_name("recorded")
NODE = "ip-10-0-12-47.eu-west-1.compute.internal"


@cache
def _recorded(kind: str) -> str:
    return (RECORDED / f"{kind}.json").read_text(encoding="utf-8")


def recorded(kind: str) -> Obj:
    """A fresh copy of the recorded object of `kind` (pod, node, service, endpointslice, ...)."""
    return dict(json.loads(_recorded(kind)))


def _uid(*parts: object) -> str:
    h = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _hex(n: int, *parts: object) -> str:
    out = ""
    i = 0
    while len(out) < n:
        out += hashlib.blake2b(f"{i}/{parts}".encode()).hexdigest()
        i += 1
    return out[:n]


def replicaset(app: str, ns: str = "shop", replicas: int = 3, template_hash: str | None = None) -> Obj:
    rs = recorded("replicaset")
    h = template_hash or _hex(10, "rs", app, ns)
    meta = rs["metadata"]
    meta.update(name=f"{app}-{h}", namespace=ns, uid=_uid("rs", ns, app, h))
    meta["labels"] = {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": ns, "pod-template-hash": h}
    meta["ownerReferences"][0].update(name=app, uid=_uid("deploy", ns, app))
    meta.pop("resourceVersion", None)
    rs["spec"]["replicas"] = replicas
    rs["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": app, "pod-template-hash": h}
    for k in ("availableReplicas", "fullyLabeledReplicas", "readyReplicas", "replicas"):
        rs["status"][k] = replicas
    return rs


def pod(app: str, index: int, *, ns: str = "shop", node: str = NODE, rs: Obj | None = None) -> Obj:
    """A running, ready pod of `app` on `node`, owned by `rs` (default: the app's ReplicaSet)."""
    rs = rs or replicaset(app, ns)
    h = rs["metadata"]["labels"]["pod-template-hash"]
    p = recorded("pod")
    suffix = _hex(5, "pod", ns, app, index)
    meta = p["metadata"]
    meta.update(
        name=f"{app}-{h}-{suffix}",
        namespace=ns,
        uid=_uid("pod", ns, app, h, index),
        generateName=f"{app}-{h}-",
    )
    meta["labels"] = {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/part-of": ns,
        "pod-template-hash": h,
        "version": "v1.14.2",
    }
    meta["ownerReferences"][0].update(name=rs["metadata"]["name"], uid=rs["metadata"]["uid"])
    meta.pop("resourceVersion", None)
    p["spec"]["nodeName"] = node
    p["spec"]["containers"][0]["name"] = app
    st = p["status"]
    st["containerStatuses"][0]["name"] = app
    for j, cs in enumerate(st["containerStatuses"]):
        cs["containerID"] = "containerd://" + _hex(64, "cid", meta["uid"], j, 0)
    ip = f"10.{244 + (index >> 16) % 8}.{(index >> 8) & 255}.{index & 255}"
    st["podIP"], st["podIPs"] = ip, [{"ip": ip}]
    return p


def node(name: str = NODE, index: int = 0) -> Obj:
    n = recorded("node")
    n["metadata"].update(name=name, uid=_uid("node", name))
    n["metadata"]["labels"]["kubernetes.io/hostname"] = name
    n["metadata"].pop("resourceVersion", None)
    n["status"]["addresses"][0]["address"] = f"10.0.{index >> 8 & 255}.{index & 255}"
    return n


def service(app: str, ns: str = "shop", cluster_ip: str = "172.20.141.83") -> Obj:
    s = recorded("service")
    s["metadata"].update(name=app, namespace=ns, uid=_uid("svc", ns, app))
    s["metadata"]["labels"]["app.kubernetes.io/name"] = app
    s["metadata"].pop("resourceVersion", None)
    s["spec"]["selector"] = {"app.kubernetes.io/name": app}
    s["spec"]["clusterIP"] = cluster_ip
    s["spec"]["clusterIPs"] = [cluster_ip]
    return s


def endpointslice(app: str, pods: list[Obj], ns: str = "shop", ready: bool = True) -> Obj:
    es = recorded("endpointslice")
    template = es["endpoints"][0]
    es["endpoints"] = []
    for p in pods:
        ep = copy.deepcopy(template)
        ep["addresses"] = [p["status"]["podIP"]]
        ep["conditions"]["ready"] = ready
        ep["nodeName"] = p["spec"]["nodeName"]
        ep["targetRef"].update(name=p["metadata"]["name"], namespace=ns, uid=p["metadata"]["uid"])
        es["endpoints"].append(ep)
    es["metadata"].update(name=f"{app}-{_hex(5, 'es', ns, app)}", namespace=ns, uid=_uid("es", ns, app))
    es["metadata"]["labels"]["kubernetes.io/service-name"] = app
    es["metadata"]["ownerReferences"][0].update(name=app, uid=_uid("svc", ns, app))
    es["metadata"].pop("resourceVersion", None)
    return es


def deployment(app: str, ns: str = "shop", replicas: int = 3, image: str | None = None) -> Obj:
    d = recorded("deployment")
    d["metadata"].update(name=app, namespace=ns, uid=_uid("deploy", ns, app))
    d["metadata"]["labels"]["app.kubernetes.io/name"] = app
    d["metadata"].pop("resourceVersion", None)
    d["spec"]["replicas"] = replicas
    d["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": app}
    c = d["spec"]["template"]["spec"]["containers"][0]
    c["name"] = app
    c["image"] = image or f"registry.example.com/{ns}/{app}:v1.14.2"
    return d


def core_event(reason: str, involved: Obj, message: str, *, type_: str = "Warning", count: int = 1) -> Obj:
    e = recorded("event")
    meta = involved["metadata"]
    kind = involved["kind"]
    e["involvedObject"] = {
        "apiVersion": involved.get("apiVersion", "v1"), "kind": kind, "name": meta["name"],
        "namespace": meta.get("namespace", ""), "uid": meta["uid"],
    }  # fmt: skip
    e["reason"], e["message"], e["type"], e["count"] = reason, message, type_, count
    ns = meta.get("namespace") or "default"
    e["metadata"].update(
        name=f"{meta['name']}.{_hex(16, 'ev', meta['uid'], reason)}",
        namespace=ns,
        uid=_uid("ev", meta["uid"], reason),
    )
    e["metadata"].pop("resourceVersion", None)
    return e


# --- status transitions (what the kubelet writes), each returning a changed copy ------------------


def _container(p: Obj, name: str | None) -> Obj:
    statuses: list[Obj] = p["status"]["containerStatuses"]
    return next(c for c in statuses if name is None or c["name"] == name)


def _set_condition(obj: Obj, type_: str, status: str, at: str, reason: str = "") -> None:
    for c in obj["status"]["conditions"]:
        if c["type"] == type_:
            c["status"], c["lastTransitionTime"] = status, at
            if reason:
                c["reason"] = reason


def terminated(
    p: Obj,
    *,
    reason: str = "Error",
    exit_code: int = 1,
    at: str = "2026-11-30T08:21:00Z",
    container: str | None = None,
) -> Obj:
    """The container died and restarts: lastState.terminated, restartCount + 1, not ready, new id."""
    p = copy.deepcopy(p)
    c = _container(p, container)
    c["lastState"] = {
        "terminated": {
            "containerID": c["containerID"],
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": c["state"].get("running", {}).get("startedAt", at),
            "finishedAt": at,
        }
    }
    c["restartCount"] += 1
    c["containerID"] = "containerd://" + _hex(64, "cid", p["metadata"]["uid"], c["name"], c["restartCount"])
    c["state"] = {"running": {"startedAt": at}}
    return p


def crash_loop(
    p: Obj, *, exit_code: int = 1, at: str = "2026-11-30T08:21:00Z", container: str | None = None
) -> Obj:
    """The container died again and the kubelet backs off: waiting CrashLoopBackOff, not ready."""
    p = terminated(p, exit_code=exit_code, at=at, container=container)
    c = _container(p, container)
    c["state"] = {
        "waiting": {
            "reason": "CrashLoopBackOff",
            "message": f"back-off 40s restarting failed container={c['name']} pod={p['metadata']['name']}",
        }
    }
    c["ready"], c["started"] = False, False
    _set_condition(p, "Ready", "False", at, "ContainersNotReady")
    _set_condition(p, "ContainersReady", "False", at, "ContainersNotReady")
    return p


def readiness(p: Obj, ready: bool, *, at: str = "2026-11-30T08:22:00Z", container: str | None = None) -> Obj:
    """The readiness probe failed (or passed again) while the containers keep running."""
    p = copy.deepcopy(p)
    _container(p, container)["ready"] = ready
    status = "True" if ready else "False"
    _set_condition(p, "Ready", status, at, "" if ready else "ContainersNotReady")
    _set_condition(p, "ContainersReady", status, at, "" if ready else "ContainersNotReady")
    return p


def node_lost(p: Obj, *, at: str = "2026-11-30T08:22:30Z") -> Obj:
    """The node lifecycle controller's write when the pod's node stops reporting (MarkPodsNotReady):
    the Ready condition False; the container statuses stay as the kubelet last wrote them (ready)."""
    p = copy.deepcopy(p)
    _set_condition(p, "Ready", "False", at)
    return p


def evicted(p: Obj, *, at: str = "2026-11-30T08:23:00Z") -> Obj:
    p = copy.deepcopy(p)
    st = p["status"]
    st["phase"], st["reason"] = "Failed", "Evicted"
    st["message"] = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91340Ki."
    for c in st["containerStatuses"]:
        c["ready"] = False
        c["state"] = {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown", "finishedAt": at}}
    _set_condition(p, "Ready", "False", at, "PodFailed")
    return p


def node_condition(n: Obj, type_: str, status: str, *, at: str = "2026-11-30T08:25:00Z") -> Obj:
    n = copy.deepcopy(n)
    _set_condition(n, type_, status, at)
    return n


def rollout(d: Obj, image: str, *, at: str = "2026-11-30T08:30:00Z") -> Obj:
    d = copy.deepcopy(d)
    d["metadata"]["generation"] += 1
    d["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return d


def stalled(d: Obj, *, at: str = "2026-11-30T08:40:00Z") -> Obj:
    d = copy.deepcopy(d)
    for c in d["status"]["conditions"]:
        if c["type"] == "Progressing":
            c.update(status="False", reason="ProgressDeadlineExceeded", lastUpdateTime=at, lastTransitionTime=at,
                     message=f'ReplicaSet "{d["metadata"]["name"]}-5c6d7e8f9a" has timed out progressing.')  # fmt: skip
    d["status"]["availableReplicas"] = max(0, d["spec"]["replicas"] - 1)
    return d
