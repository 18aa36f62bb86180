"""Settings of the Kubernetes collector (one frozen class, defaults in one place), from flags over
the `k8s-collector:` YAML section."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

import attrs

from tapio_common.errors import ConfigError

CLUSTER_RESOURCES = ("nodes", "services", "endpointslices", "deployments", "replicasets", "events")


def _h(text: str) -> dict[str, str]:
    return {"help": text}


@attrs.frozen
class K8sSettings:
    kubeconfig: str | None = attrs.field(
        default=None,
        metadata=_h(
            "kubeconfig file (default: the in-cluster service account, else $KUBECONFIG or ~/.kube/config)"
        ),
    )
    context: str | None = attrs.field(
        default=None, metadata=_h("kubeconfig context (default: its current-context)")
    )
    cluster: str = attrs.field(default="", metadata=_h("cluster name put in every event's context.cluster"))
    lease_name: str = attrs.field(
        default="tapio-k8s-collector",
        metadata=_h("coordination.k8s.io Lease electing the one node that publishes cluster-scoped objects"),
    )
    lease_namespace: str | None = attrs.field(
        default=None,
        metadata=_h("namespace of the Lease (default: the service account's or the kubeconfig context's)"),
    )
    lease_duration: float = attrs.field(
        default=15.0, metadata=_h("seconds a Lease holder is trusted without renewing")
    )
    renew_interval: float = attrs.field(default=5.0, metadata=_h("seconds between Lease renewals"))
    renew_deadline: float = attrs.field(
        default=10.0,
        metadata=_h(
            "a holder that could not renew for this long stops publishing cluster objects (< lease duration)"
        ),
    )
    cluster_resources: tuple[str, ...] = attrs.field(
        default=CLUSTER_RESOURCES,
        converter=tuple,
        metadata=_h("cluster-scoped/namespace-wide resources the Lease holder watches (comma-separated)"),
    )
    page_size: int = attrs.field(default=500, metadata=_h("objects per list page (limit/continue)"))
    watch_timeout: int = attrs.field(
        default=300, metadata=_h("seconds a watch request lasts before it is renewed")
    )
    max_object_bytes: int = attrs.field(
        default=1024 * 1024, metadata=_h("larger watch events are counted and skipped")
    )
    checkpoint_interval: float = attrs.field(
        default=10.0,
        metadata=_h(
            "seconds between saves of the watch state (resourceVersions, digests) under the data dir"
        ),
    )
    backoff_max: float = attrs.field(
        default=30.0, metadata=_h("longest wait between retries when the API server is unreachable")
    )

    def __attrs_post_init__(self) -> None:
        unknown = sorted(set(self.cluster_resources) - set(CLUSTER_RESOURCES))
        checks = [
            (not unknown, f"unknown cluster resource {unknown[0] if unknown else ''!r} (known: {', '.join(CLUSTER_RESOURCES)})"),
            (0 < self.renew_interval < self.renew_deadline < self.lease_duration,
             "need 0 < renew_interval < renew_deadline < lease_duration"),
            (self.page_size >= 1, "page_size must be >= 1"),
            (self.watch_timeout >= 1, "watch_timeout must be >= 1"),
            (self.max_object_bytes >= 1024, "max_object_bytes must be >= 1024"),
            (self.checkpoint_interval > 0, "checkpoint_interval must be > 0"),
            (self.backoff_max >= 0.5, "backoff_max must be >= 0.5"),
        ]  # fmt: skip
        for ok, problem in checks:
            if not ok:
                raise ConfigError(f"bad k8s-collector setting: {problem}")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("kubernetes options (YAML: the k8s-collector: section, same names with _)")
    for f in attrs.fields(K8sSettings):
        default = f.default
        shown = ",".join(default) if isinstance(default, tuple) else default
        text = f.metadata["help"] + (f" (default {shown})" if shown not in (None, "") else "")
        g.add_argument(_flag(f.name), dest=f"k8s_{f.name}", metavar=f.name.upper(), help=text)


def load_settings(args: argparse.Namespace, section: Mapping[str, Any]) -> K8sSettings:
    """Flags over the YAML section over the defaults; ConfigError naming the key for a bad value."""
    fields = {f.name: f for f in attrs.fields(K8sSettings)}
    values: dict[str, Any] = {}
    for key, raw in section.items():
        if key == "publisher":
            continue
        if key not in fields:
            raise ConfigError(
                f"unknown k8s-collector setting {key!r} (known: {', '.join(fields)}, publisher)"
            )
        values[key] = raw
    for name in fields:
        flag = getattr(args, f"k8s_{name}", None)
        if flag is not None:
            values[name] = flag
    for name, raw in list(values.items()):
        values[name] = _coerce(name, raw, fields[name].default)
    return K8sSettings(**values)


def _coerce(name: str, raw: Any, default: Any) -> Any:
    try:
        if isinstance(default, tuple):
            items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
            return tuple(str(i).strip() for i in items if str(i).strip())
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, int):
            return int(raw)
        return None if raw is None else str(raw)
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"bad k8s-collector setting {name}={raw!r}: expected a {type(default).__name__}"
        ) from e
