"""What `tapio-admin up` starts on a host, and why it leaves a component out (pure)."""

from __future__ import annotations

from tapio_admin.plan import HostFacts, plan

CONSUMERS = ["correlator", "pipeline", "siem-exporter"]


def names(facts: HostFacts) -> tuple[list[str], dict[str, str]]:
    launches, skips = plan(facts, "/etc/tapio/routes.yaml")
    return [x.name for x in launches], {s.name: s.reason for s in skips}


def test_a_root_node_with_everything_runs_everything() -> None:
    started, skipped = names(HostFacts(root=True, bcc=True, pid1="systemd", kubeconfig="/root/.kube/config"))
    assert started == [*CONSUMERS, "ebpf-collector", "cni-collector", "systemd-collector", "k8s-collector"]
    assert skipped == {}


def test_a_plain_user_in_a_container_gets_the_consumers_and_every_reason() -> None:
    started, skipped = names(HostFacts(root=False, bcc=False, pid1="bash", kubeconfig=None))
    assert started == CONSUMERS
    assert skipped == {
        "ebpf-collector": "needs root to load BPF programs (run make run as root)",
        "cni-collector": "needs root to map veth peers into pods' network namespaces",
        "systemd-collector": "PID 1 is bash, not systemd: no units to follow",
        "k8s-collector": "no kubeconfig ($KUBECONFIG or ~/.kube/config): no API server to watch",
    }


def test_root_without_bcc_says_how_to_get_it() -> None:
    started, skipped = names(HostFacts(root=True, bcc=False, pid1="init", kubeconfig=None))
    assert "ebpf-collector" not in started
    assert "cni-collector" in started
    assert "python3-bpfcc" in skipped["ebpf-collector"]


def test_the_exporter_prints_to_the_console_and_the_pipeline_gets_the_rules() -> None:
    launches, _ = plan(HostFacts(root=False, bcc=False, pid1="", kubeconfig="/k"), "/r.yaml")
    by = {x.name: x for x in launches}
    assert by["siem-exporter"].console
    assert by["siem-exporter"].args == ("--sink", "console")
    assert by["pipeline"].args == ("--rules", "/r.yaml")
    assert by["k8s-collector"].args == ("--kubeconfig", "/k")
    assert not any(x.console for n, x in by.items() if n != "siem-exporter")


def test_exporter_sinks_are_added_beside_the_console() -> None:
    facts = HostFacts(root=False, bcc=False, pid1="", kubeconfig=None)
    launches, _ = plan(facts, "/r.yaml", ("hec=http://127.0.0.1:8088?token=t", "alertmanager=http://am:9093"))
    exporter = next(x for x in launches if x.name == "siem-exporter")
    assert exporter.args == (
        "--sink", "console", "--sink", "hec=http://127.0.0.1:8088?token=t", "--sink", "alertmanager=http://am:9093",
    )  # fmt: skip
