"""The Kubernetes collector benchmark's API-server side: N realistic pods on one node (the recorded
pod, renamed, each owned by one of 500 ReplicaSets), loaded into the test API server pre-encoded,
and a pod watch stream generated as fast as the client reads: each event is a MODIFIED pod whose
container restarted once more (restartCount + 1, a new container id, lastState terminated), so
each watch event gives exactly one `restarted` event."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

from tapio_testing.k8s_api import K8sApiServer
from tapio_testing.k8s_api import objects as o

NODE = o.NODE
APPS = 500
_HOLE = re.compile(r'"@@(\w+)@@"')


class Template:
    """A pod's JSON with holes ("@@NAME@@" strings) filled by joining pre-split parts."""

    def __init__(self, obj: dict[str, object]) -> None:
        text = json.dumps(obj, separators=(",", ":"))
        pieces = _HOLE.split(text)
        self.literals = [p.encode() for p in pieces[0::2]]
        self.names = pieces[1::2]

    def fill(self, values: dict[str, bytes]) -> bytes:
        out = [self.literals[0]]
        for name, lit in zip(self.names, self.literals[1:], strict=True):
            out.append(values[name])
            out.append(lit)
        return b"".join(out)


def _template(restarted: bool) -> Template:
    rs = o.replicaset("app")
    p = o.pod("app", 0, rs=rs)
    meta = p["metadata"]
    meta.update(name="@@NAME@@", uid="@@UID@@", resourceVersion="@@RV@@", namespace="@@NS@@")
    meta["labels"].update({"app.kubernetes.io/name": "@@APP@@", "pod-template-hash": "@@HASH@@"})
    meta["ownerReferences"][0].update(name="@@RS@@", uid="@@RSUID@@")
    st = p["status"]
    st["podIP"], st["podIPs"] = "@@IP@@", [{"ip": "@@IP@@"}]
    c0 = st["containerStatuses"][0]
    c0["containerID"], c0["restartCount"] = "@@CID@@", "@@RC@@"
    if restarted:
        c0["lastState"] = {"terminated": {"containerID": "@@OLDCID@@", "exitCode": 1, "reason": "Error",
                                          "startedAt": "2026-11-30T08:14:58Z", "finishedAt": "@@FIN@@"}}  # fmt: skip
    return Template(p)


class Feed:
    def __init__(self, pods: int) -> None:
        self.pods = pods
        self.listed = _template(False)
        self.restarted = _template(True)
        self.watch_started: float | None = None
        self.watch_served = 0
        self.pod_bytes = 0

    def _values(self, i: int, rv: int, restarts: int) -> dict[str, bytes]:
        app = i % APPS
        h = f"{(app * 2654435761) % (1 << 40):010x}"
        return {
            "NAME": f"app-{app}-{h}-{i:06x}".encode(), "UID": f"{i:08x}-0000-4000-8000-{i:012x}".encode(),
            "RV": f'"{rv}"'.encode(), "NS": f'"ns-{app % 40}"'.encode(), "APP": f'"app-{app}"'.encode(),
            "HASH": f'"{h}"'.encode(), "RS": f'"app-{app}-{h}"'.encode(),
            "RSUID": f'"{app:08x}-1111-4000-8000-{app:012x}"'.encode(),
            "IP": f'"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"'.encode(),
            "CID": f'"containerd://{i:032x}{restarts:032x}"'.encode(), "RC": str(restarts).encode(),
            "OLDCID": f'"containerd://{i:032x}{max(0, restarts - 1):032x}"'.encode(),
            "FIN": f'"2026-11-30T09:{(restarts // 60) % 60:02d}:{restarts % 60:02d}Z"'.encode(),
        }  # fmt: skip

    def listed_pod(self, i: int, rv: int = 1) -> bytes:
        """Pod i as listed (never restarted), JSON."""
        return self.listed.fill(self._quoted(i, rv, 0))

    def _quoted(self, i: int, rv: int, restarts: int) -> dict[str, bytes]:
        v = self._values(i, rv, restarts)
        v["NAME"] = b'"' + v["NAME"] + b'"'
        v["UID"] = b'"' + v["UID"] + b'"'
        return v

    def load(self, api: K8sApiServer) -> None:
        rv = api.store.rv
        rows = []
        for i in range(self.pods):
            v = self._quoted(i, rv, 0)
            data = self.listed.fill(v)
            self.pod_bytes += len(data)
            ns = v["NS"].decode().strip('"')
            small = {
                "metadata": {"name": v["NAME"].decode().strip('"'), "namespace": ns},
                "spec": {"nodeName": NODE},
            }
            rows.append((ns, small["metadata"]["name"], small, data))
        api.store.load("pods", rows)
        api.storms["pods"] = self.storm
        api.store.apply(o.node(NODE, 0))

    def storm(self, after: int) -> Iterator[bytes]:
        """Watch chunks after `after`: pod i restarts for the k-th time, cycling over every pod."""
        if self.watch_started is None:
            self.watch_started = time.monotonic()
        rv, n = after, 0
        while True:
            lines = []
            for _ in range(32):
                i = n % self.pods
                restarts = n // self.pods + 1
                rv += 1
                n += 1
                v = self._quoted(i, rv, restarts)
                lines.append(b'{"type":"MODIFIED","object":' + self.restarted.fill(v) + b"}\n")
            self.watch_served += len(lines)
            yield b"".join(lines)
