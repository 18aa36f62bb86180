"""Command line of `tapio-collector-k8s`: the harness CLI with the Kubernetes settings."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tapio_collector import CollectorSpec, Source, collector_main
from tapio_collector.cli import build_parser as harness_parser
from tapio_collector_k8s.settings import PUBLISHER_SECTION, K8sSettings
from tapio_common.config import CommonConfig, add_settings_arguments, load_settings

DESCRIPTION = """\
Kubernetes collector (runs on every node, as a DaemonSet). Watches the API server with the
official client (kubeconfig or the in-cluster service account) and publishes Tapio events to
tapio.events.k8s.{namespace}.{resource}.{action}:
  - pods of THIS node (field selector spec.nodeName=<node name>), always;
  - nodes, services, EndpointSlices, deployments, replicasets and core Events only on the node
    holding the coordination.k8s.io Lease (one publisher per cluster object; another node takes
    over within the lease duration when the holder dies, at once when it stops cleanly).
List+watch with resourceVersion and bookmarks; the watch state is saved under
<data dir>/k8s-collector/watch-state, so a restart resumes where it stopped, and after a 410 Gone a
relist emits only what changed meanwhile (and `deleted` for what vanished). Event ids are a hash
of uid, resourceVersion and action: a re-emitted event has the same id.
Actions: created, updated, deleted, restarted, crash_loop, oom_killed, unhealthy, not_ready, ready,
evicted, failed_scheduling, scaled; Service unhealthy when its ready endpoints reach 0;
Deployment updated with reason TemplateChanged / ProgressDeadlineExceeded; node conditions."""

EXAMPLES = """\
  tapio-collector-k8s --kubeconfig ~/.kube/config --node-name worker-1 --nats-url nats://nats:4222
  NODE_NAME=worker-1 tapio-collector-k8s                         # in-cluster, embedded JetStream
  tapio-collector-k8s --config /etc/tapio/k8s.yaml --lease-namespace tapio --cluster prod-eu-1

RBAC: get/list/watch pods, nodes, services, events, endpointslices.discovery.k8s.io,
deployments.apps, replicasets.apps, jobs.batch; get/create/update leases.coordination.k8s.io."""


def make_source(args: argparse.Namespace, cfg: CommonConfig) -> Source:
    from tapio_collector_k8s.adapters.client import Api, load_config
    from tapio_collector_k8s.source import K8sSource

    settings = load_settings(
        K8sSettings, cfg.section, args=args, allow=(PUBLISHER_SECTION,), name="k8s-collector"
    )
    client_cfg, namespace = load_config(settings.kubeconfig or None, settings.context or None)
    return K8sSource(settings, Api(client_cfg), settings.lease_namespace or namespace)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_arguments(parser, K8sSettings, "kubernetes options (YAML: the k8s-collector: section)")


SPEC = CollectorSpec(
    prog="tapio-collector-k8s",
    component="k8s-collector",
    description=DESCRIPTION,
    examples=EXAMPLES,
    make_source=make_source,
    add_arguments=_add_arguments,
)


def build_parser() -> argparse.ArgumentParser:
    return harness_parser(SPEC)


def main(argv: Sequence[str] | None = None) -> int:
    return collector_main(SPEC, argv)
