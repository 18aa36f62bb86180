"""Permissions on the production cluster: every component process whose user may not do what it
tries (a Secret mounted into the wrong workload) is refused by the server, and says so in ONE clear
ERROR line naming the operation and subject, counts it in errors_total{kind="permission"}, and keeps
running. One case per component: the pipeline, the SIEM exporter and the correlator started with a
collector's certificate (user tapio-collectors may only publish events: their consumers, stream
lookups and pulls are refused); each collector started with the SIEM exporter's certificate (user
tapio-siem-exporter may not publish `tapio.events.*`), given something real to report. Plus a
collector's user subscribing to `tapio.events.>` with a bare client: refused. One cluster for all."""

from __future__ import annotations

import re
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import anyio
import attrs
import pytest

from tapio_admin.plan import HostFacts, plan
from tapio_admin.up import DEFAULT_RULES
from tapio_common.nats.connect import connect, refusals
from tapio_testing.cgroups import tag
from tapio_testing.k8s_api import K8sApiServer
from tapio_testing.natscluster import NatsCluster
from tapio_testing.systemd_ns import NamespacedSystemd
from tapio_testing.wait import eventually
from tests.integration.e2e.cluster import node
from tests.integration.e2e.product import Component

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

REFUSED = re.compile(r"ERROR .*NATS refused an operation this user is not permitted.* refused=(.*)$")
COLLECTOR = "tapio-ebpf-collector"  # any collector's Secret: user tapio-collectors
EXPORTER = "tapio-siem-exporter"
FAILING = """[Service]
ExecStart=/bin/sh -c 'exit 1'
"""


def _cni(tmp: Path, stack: ExitStack) -> tuple[str, ...]:
    """A CNI configuration to report (its `config detected` event) and nothing else: its own
    namespace sampled has only lo."""
    conf = tmp / "cni-net.d"
    conf.mkdir()
    conf.joinpath("10-te2r.conflist").write_text(
        '{"cniVersion": "0.4.0", "name": "te2r-net", "plugins": [{"type": "bridge", "bridge": "cni0"}]}'
    )
    return ("--cni-conf-dir", str(conf))


def _ebpf(tmp: Path, stack: ExitStack) -> tuple[str, ...]:
    """Every exec on the machine is an event: a loop exec'ing /bin/true twice a second makes sure
    there is one (a quiet CI machine may exec nothing for minutes)."""
    loop = subprocess.Popen(["/bin/sh", "-c", "while :; do /bin/true; sleep 0.5; done"])
    stack.callback(loop.wait)
    stack.callback(loop.kill)
    return ("--programs", "exec")


def _k8s(tmp: Path, stack: ExitStack) -> tuple[str, ...]:
    api = stack.enter_context(K8sApiServer(token="te2r-token"))
    node(api, f"te2r-node-{tag()}")  # listed at start: an event
    return ("--kubeconfig", str(api.kubeconfig(tmp / "kubeconfig.json")), "--cluster", "te2r")


def _systemd(tmp: Path, stack: ExitStack) -> tuple[str, ...]:
    sd = NamespacedSystemd({"te2r-failing.service": FAILING}, name="te2r")
    sd.start()
    stack.callback(sd.stop)
    sd.systemctl("start", "--no-block", "te2r-failing.service")  # fails: an event
    return ("--bus", sd.bus_address, "--journal-root", sd.journal_root)


def _none(tmp: Path, stack: ExitStack) -> tuple[str, ...]:
    return ()


@attrs.frozen
class Case:
    component: str  # tapio-admin's name
    wrong: str  # the workload whose Secret it is started with
    refused: str  # what the refusal names (nats-py lower-cases it)
    given: Callable[[Path, ExitStack], tuple[str, ...]] = _none  # what it observes: its flags

    def __str__(self) -> str:
        return f"{self.component}-with-{self.wrong}"


CASES = [
    Case("pipeline", COLLECTOR, "$js.api.consumer"),  # its consumer on TAPIO_EVENTS
    Case("siem-exporter", COLLECTOR, "$js.api"),  # its consumers, its streams
    Case("correlator", COLLECTOR, "$js.api"),  # its durable, its snapshot bucket
    Case("cni-collector", EXPORTER, "tapio.events", _cni),
    Case("ebpf-collector", EXPORTER, "tapio.events", _ebpf),
    Case("k8s-collector", EXPORTER, "tapio.events", _k8s),
    Case("systemd-collector", EXPORTER, "tapio.events", _systemd),
]


def refusal_lines(c: Component) -> list[str]:
    return [x for x in c.log_tail(400).splitlines() if REFUSED.search(x)]


def permission_errors(c: Component) -> float:
    prefix = "tapio_" + c.launch.name.replace("-", "_")
    with urllib.request.urlopen(f"http://127.0.0.1:{c.metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    found = re.findall(rf'^{prefix}_errors_total\{{kind="permission"\}} (\S+)$', text, re.M)
    return sum(float(v) for v in found)


@contextmanager
def started(case: Case, cluster: NatsCluster, tmp: Path) -> Iterator[Component]:
    facts = HostFacts(root=True, bcc=True, pid1="systemd", kubeconfig="given")  # k8s: --kubeconfig again
    launches = {x.name: x for x in plan(facts, str(DEFAULT_RULES))[0]}
    with ExitStack() as stack:
        extra = case.given(tmp, stack)
        launch = attrs.evolve(launches[case.component], args=(*launches[case.component].args, *extra))
        wrong = cluster.identity(case.wrong).env(cluster.urls)
        c = Component(launch, ",".join(cluster.urls), tmp, wrong)
        c.start()
        try:
            yield c
        finally:
            c.stop()


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_a_component_with_another_workloads_certificate_is_refused_and_says_so(
    case: Case, e2e_cluster: NatsCluster, tmp_path: Path
) -> None:
    with started(case, e2e_cluster, tmp_path) as c:
        await eventually(lambda: bool(refusal_lines(c)), f"the {case.component} logging the refusal", 90)
        line = refusal_lines(c)[0]
        m = REFUSED.search(line)
        assert m, line
        assert case.refused in m[1].lower(), line
        await eventually(lambda: permission_errors(c) >= 1, 'errors_total{kind="permission"}', within=30)
        await anyio.sleep(1)  # still running a moment later: a refusal is reported, not a crash
        assert c.alive(), f"a refusal is reported, not a crash:\n{c.log_tail()}"
        # ONE line per refused operation (a collector's publisher retries its batch: refused again,
        # counted, not logged again), every refusal counted.
        refused = [m[1] for m in map(REFUSED.search, refusal_lines(c)) if m]
        assert len(refused) == len(set(refused)), refused
        assert len(refused) <= permission_errors(c), refused


async def test_a_collectors_user_may_not_read_the_events(e2e_cluster: NatsCluster) -> None:
    """A bare client with a collector's certificate subscribing to every event: the server refuses
    the subscription (the user publishes events only, reads nothing but its own inbox)."""
    ident = e2e_cluster.identity(COLLECTOR)
    seen: list[str] = []
    nc = await connect(ident.nats_config(e2e_cluster.urls), "te2r-raw", on_refused=seen.append)
    try:
        sub = await nc.subscribe("tapio.events.>")
        await nc.flush()
        await eventually(lambda: bool(seen), "the subscription refused", within=10)
        assert seen[0].lower() == 'permissions violation for subscription to "tapio.events.>"', seen
        assert refusals(nc)[0] == 1
        await sub.unsubscribe()
    finally:
        await nc.close()
