"""Which components `tapio-admin up` starts on this host, and with what command line (pure).

Fed by `up.py` with the facts it read off the host (`HostFacts`: root or not, bcc importable,
PID 1's name, a kubeconfig); returns one `Launch` per component that can run here and one `Skip`
with the reason for each that cannot. The consumers (correlator, pipeline, SIEM exporter with a
console sink, plus the sinks given with --exporter-sink) always run; the collectors run where their source exists: eBPF and CNI as root (bcc
for eBPF), systemd when PID 1 is systemd, Kubernetes when a kubeconfig is found.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs


@attrs.frozen
class HostFacts:
    root: bool
    bcc: bool
    pid1: str  # /proc/1/comm
    kubeconfig: str | None  # the file found ($KUBECONFIG, ~/.kube/config), or None


@attrs.frozen
class Launch:
    name: str  # component, e.g. "correlator"
    module: str  # python -m <module>
    args: tuple[str, ...]  # its own flags, beside --nats-url/--metrics-port/--data-dir
    console: bool = False  # its standard output goes to the terminal (the alerts), not to its log


@attrs.frozen
class Skip:
    name: str
    reason: str


def plan(
    facts: HostFacts, rules_file: str, exporter_sinks: Sequence[str] = ()
) -> tuple[list[Launch], list[Skip]]:
    """`exporter_sinks`: further `--sink` specs of the SIEM exporter, beside the console."""
    sinks = tuple(arg for spec in exporter_sinks for arg in ("--sink", spec))
    launches = [
        Launch("correlator", "tapio_correlator", ("serve",)),
        Launch("pipeline", "tapio_pipeline", ("--rules", rules_file)),
        Launch("siem-exporter", "tapio_exporters", ("--sink", "console", *sinks), console=True),
    ]
    skips: list[Skip] = []
    if not facts.root:
        skips.append(Skip("ebpf-collector", "needs root to load BPF programs (run make run as root)"))
    elif not facts.bcc:
        skips.append(Skip("ebpf-collector", "bcc is not importable (make setup installs python3-bpfcc)"))
    else:
        launches.append(Launch("ebpf-collector", "tapio_collector_ebpf", ()))
    if facts.root:
        launches.append(Launch("cni-collector", "tapio_collector_cni", ()))
    else:
        skips.append(Skip("cni-collector", "needs root to map veth peers into pods' network namespaces"))
    if facts.pid1 == "systemd":
        launches.append(Launch("systemd-collector", "tapio_collector_systemd", ()))
    else:
        skips.append(
            Skip("systemd-collector", f"PID 1 is {facts.pid1 or 'unknown'}, not systemd: no units to follow")
        )
    if facts.kubeconfig:
        launches.append(Launch("k8s-collector", "tapio_collector_k8s", ("--kubeconfig", facts.kubeconfig)))
    else:
        skips.append(
            Skip("k8s-collector", "no kubeconfig ($KUBECONFIG or ~/.kube/config): no API server to watch")
        )
    return launches, skips
