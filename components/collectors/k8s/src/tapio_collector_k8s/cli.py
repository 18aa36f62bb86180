"""Command line of `tapio-collector-k8s`: flags, configuration and start-up."""

from __future__ import annotations

from tapio_common.cli import Flag, PendingComponent

CLI = PendingComponent(
    prog="tapio-collector-k8s",
    component="k8s-collector",
    description="""\
Kubernetes collector: watches pods, nodes, services, endpoints, deployments, replicasets and core
Events through the API server (list + watch with resourceVersion, bookmarks, 410 resync) and
publishes them as Tapio events to tapio.events.k8s.{namespace}.{resource}.{action}.""",
    examples="""\
  tapio-collector-k8s --nats-url nats://nats:4222
  tapio-collector-k8s --kubeconfig ~/.kube/config --namespace team-a""",
    flags=(
        Flag(
            "--kubeconfig",
            "FILE",
            "kubeconfig file (default: in-cluster service account, then ~/.kube/config)",
        ),
        Flag("--namespace", "NS", "watch one namespace only (default: all namespaces)"),
        Flag("--resync-seconds", "N", "full relist period in seconds (default 600)"),
    ),
)
build_parser = CLI.build_parser
main = CLI.main
