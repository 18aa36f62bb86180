"""Settings of the Kubernetes collector: one frozen class (defaults and help written once), built by
`tapio_common.config.load_settings` from flags > environment > the `k8s-collector:` YAML section."""

from __future__ import annotations

import attrs

from tapio_common.config.schema import above, at_least, setting
from tapio_common.errors import ConfigError

CLUSTER_RESOURCES = ("nodes", "services", "endpointslices", "deployments", "replicasets", "events")
PUBLISHER_SECTION = "publisher"
"""Sub-section of `k8s-collector:` the harness reads for the publisher."""


@attrs.frozen(kw_only=True)
class K8sSettings:
    kubeconfig: str = setting(
        "", "kubeconfig file",
        metavar="FILE", default_text="the in-cluster service account, else $KUBECONFIG or ~/.kube/config",
    )  # fmt: skip
    context: str = setting(
        "", "kubeconfig context", metavar="NAME", default_text="the kubeconfig's current-context"
    )
    cluster: str = setting(
        "",
        "cluster name put in every event's context.cluster",
        env="TAPIO_CLUSTER",
        metavar="NAME",
        default_text="none",
    )
    lease_name: str = setting(
        "tapio-k8s-collector", "coordination.k8s.io Lease electing the one node that publishes cluster-scoped objects",
        metavar="NAME",
    )  # fmt: skip
    lease_namespace: str = setting(
        "", "namespace of the Lease", env="POD_NAMESPACE", metavar="NS",
        default_text="the service account's namespace, else the kubeconfig context's",
    )  # fmt: skip
    lease_duration: float = setting(
        15.0, "seconds a Lease holder is trusted without renewing", metavar="SECONDS", check=above(0)
    )
    renew_interval: float = setting(5.0, "seconds between Lease renewals", metavar="SECONDS", check=above(0))
    renew_deadline: float = setting(
        10.0, "a holder that could not renew for this long stops publishing cluster objects (< lease duration)",
        metavar="SECONDS", check=above(0),
    )  # fmt: skip
    cluster_resources: tuple[str, ...] = setting(
        CLUSTER_RESOURCES, "resources only the Lease holder watches (comma-separated)", metavar="LIST"
    )
    page_size: int = setting(500, "objects per list page (limit/continue)", check=at_least(1))
    watch_timeout: int = setting(
        300, "seconds a watch request lasts before it is renewed", metavar="SECONDS", check=at_least(1)
    )
    max_object_bytes: int = setting(
        1024 * 1024, "larger watch events are counted and skipped", metavar="BYTES", check=at_least(1024)
    )
    checkpoint_interval: float = setting(
        60.0, "seconds between snapshots of the whole watch state (resourceVersions, digests) under the data dir",
        metavar="SECONDS", check=above(0),
    )  # fmt: skip
    mark_interval: float = setting(
        1.0, "seconds between journal marks (what changed, once the publisher confirmed it): after a crash "
        "at most the events of the last mark interval are emitted again",
        metavar="SECONDS", check=above(0),
    )  # fmt: skip
    backoff_max: float = setting(
        30.0,
        "longest wait between retries while the API server is unreachable",
        metavar="SECONDS",
        check=at_least(0.5),
    )

    def __attrs_post_init__(self) -> None:
        unknown = sorted(set(self.cluster_resources) - set(CLUSTER_RESOURCES))
        if unknown:
            raise ConfigError(
                f"unknown cluster resource {unknown[0]!r} (known: {', '.join(CLUSTER_RESOURCES)})"
            )
        if not self.renew_interval < self.renew_deadline < self.lease_duration:
            raise ConfigError("need renew_interval < renew_deadline < lease_duration")
