"""Permissions on the production cluster: a component process whose user may not do what it tries
(a Secret mounted into the wrong workload) is refused by the server, and the component says so in
one clear ERROR line naming the operation and subject, and counts it in errors_total{kind="permission"}:
the pipeline running with a collector's certificate (user tapio-collectors may only publish events:
creating its consumer on TAPIO_EVENTS is refused)."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from tapio_admin.plan import HostFacts, plan
from tapio_admin.up import DEFAULT_RULES
from tapio_testing.natscluster import NatsCluster
from tapio_testing.wait import eventually
from tests.integration.e2e.product import Component

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

REFUSED = re.compile(
    r"ERROR .*NATS refused an operation this user is not permitted.*refused=\"?permissions violation"
)


def refusal_lines(c: Component) -> list[str]:
    return [x for x in c.log_tail(400).splitlines() if REFUSED.search(x)]


async def test_a_pipeline_with_a_collectors_certificate_is_refused_and_says_so(
    e2e_cluster: NatsCluster, tmp_path: Path
) -> None:
    launches, _ = plan(HostFacts(root=False, bcc=False, pid1="", kubeconfig=None), str(DEFAULT_RULES))
    (pipeline,) = [x for x in launches if x.name == "pipeline"]
    wrong = e2e_cluster.identity("tapio-ebpf-collector").env(e2e_cluster.urls)  # user tapio-collectors
    c = Component(pipeline, ",".join(e2e_cluster.urls), tmp_path, wrong)
    c.start()
    try:
        await eventually(lambda: bool(refusal_lines(c)), "the pipeline logging the refusal", within=60)
        line = refusal_lines(c)[0]
        assert "$js.api.consumer" in line.lower(), line  # its consumer on TAPIO_EVENTS, refused
        await eventually(lambda: permission_errors(c) >= 1, 'errors_total{kind="permission"}', within=30)
        assert c.alive(), "a refusal is reported, not a crash"
    finally:
        c.stop()


def permission_errors(c: Component) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{c.metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    found = re.findall(r'^tapio_pipeline_errors_total\{kind="permission"\} (\S+)$', text, re.M)
    return sum(float(v) for v in found)
