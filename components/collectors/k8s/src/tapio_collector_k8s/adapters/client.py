"""The official `kubernetes` client, configured from a kubeconfig or the in-cluster service
account, used for every request; list and watch bodies are read as raw JSON (`_preload_content=
False`): building the client's models costs far more than the collector's own work (see the
benchmark's `model deserialisation` line). Blocking calls: run them in worker threads."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from tapio_collector_k8s.errors import ApiUnavailableError, ConflictError, GoneError, NotFoundError
from tapio_common.errors import ConfigError

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_URLLIB3_ERRORS = (urllib3.exceptions.HTTPError, OSError)


def load_config(kubeconfig: str | None, context: str | None) -> tuple[client.Configuration, str]:
    """(client configuration, default namespace). An explicit kubeconfig must work; without one
    the in-cluster service account is used when present, else $KUBECONFIG or ~/.kube/config."""
    cfg = client.Configuration()
    namespace = "default"
    try:
        if kubeconfig is None and (SA_DIR / "token").exists():
            config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            namespace = (SA_DIR / "namespace").read_text().strip() or namespace
        else:
            if kubeconfig is not None and not Path(kubeconfig).is_file():
                raise ConfigError(f"kubeconfig {kubeconfig} does not exist or is not a file")
            loader = config.kube_config._get_kube_config_loader(  # type: ignore[no-untyped-call]
                filename=kubeconfig or config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION,
                active_context=context,
            )
            loader.load_and_set(cfg)
            namespace = (loader.current_context.get("context") or {}).get("namespace") or namespace
    except ConfigException as e:
        where = kubeconfig or "the default kubeconfig (~/.kube/config, $KUBECONFIG)"
        raise ConfigError(f"bad kubeconfig {where}: {str(e).strip().splitlines()[0]}") from e
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise ConfigError(f"bad kubeconfig {kubeconfig or '~/.kube/config'}: {e}") from e
    cfg.retries = False  # the collector backs off itself; a dead server must fail fast
    return cfg, namespace


ListFn = Callable[..., Any]


class Api:
    """Raw list/watch/get of the watched resources, Lease read/write. All calls block."""

    def __init__(self, cfg: client.Configuration, timeout: float = 30.0) -> None:
        self.api_client = client.ApiClient(cfg)
        self.host = cfg.host
        self.timeout = timeout
        core, apps = client.CoreV1Api(self.api_client), client.AppsV1Api(self.api_client)
        disc = client.DiscoveryV1Api(self.api_client)
        self.coordination = client.CoordinationV1Api(self.api_client)
        self.batch = client.BatchV1Api(self.api_client)
        self.apps = apps
        self._list: dict[str, ListFn] = {
            "pods": core.list_pod_for_all_namespaces,
            "nodes": core.list_node,
            "services": core.list_service_for_all_namespaces,
            "events": core.list_event_for_all_namespaces,
            "endpointslices": disc.list_endpoint_slice_for_all_namespaces,
            "deployments": apps.list_deployment_for_all_namespaces,
            "replicasets": apps.list_replica_set_for_all_namespaces,
        }

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]

    def list_page(self, resource: str, *, field_selector: str | None, limit: int, cont: str | None) -> bytes:
        """One page of a list (a consistent snapshot across pages), the raw JSON body."""
        kwargs: dict[str, Any] = {"limit": limit, "_preload_content": False, "_request_timeout": self.timeout}
        if field_selector:
            kwargs["field_selector"] = field_selector
        if cont:
            kwargs["_continue"] = cont
        body: bytes = self._call(resource, self._list[resource], kwargs).data
        return body

    def watch(
        self, resource: str, *, rv: str, field_selector: str | None, timeout_seconds: int
    ) -> urllib3.HTTPResponse:
        """Opens a watch from `rv` with bookmarks; the caller reads the stream and closes it."""
        kwargs: dict[str, Any] = {
            "watch": True, "resource_version": rv, "allow_watch_bookmarks": True,
            "timeout_seconds": timeout_seconds, "_preload_content": False,
            # connect timeout, then a read timeout longer than the server's own watch timeout
            "_request_timeout": (self.timeout, timeout_seconds + 30),
        }  # fmt: skip
        if field_selector:
            kwargs["field_selector"] = field_selector
        resp: urllib3.HTTPResponse = self._call(resource, self._list[resource], kwargs)
        return resp

    def get_owner(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A ReplicaSet or Job by name (raw JSON), None when it does not exist."""
        read = (
            self.apps.read_namespaced_replica_set if kind == "ReplicaSet" else self.batch.read_namespaced_job
        )
        try:
            resp = self._call(kind, read, {"name": name, "namespace": namespace, "_preload_content": False,
                                           "_request_timeout": self.timeout})  # fmt: skip
        except NotFoundError:
            return None
        obj: dict[str, Any] = json.loads(resp.data)
        return obj

    def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            resp = self._call("lease", self.coordination.read_namespaced_lease,
                              {"name": name, "namespace": namespace, "_preload_content": False,
                               "_request_timeout": self.timeout})  # fmt: skip
        except NotFoundError:
            return None
        obj: dict[str, Any] = json.loads(resp.data)
        return obj

    def write_lease(self, namespace: str, body: dict[str, Any], *, create: bool) -> dict[str, Any]:
        """Creates or replaces the Lease; ConflictError when someone else wrote it first."""
        name = body["metadata"]["name"]
        fn: ListFn
        kwargs: dict[str, Any]
        if create:
            fn, kwargs = self.coordination.create_namespaced_lease, {"namespace": namespace, "body": body}
        else:
            fn = self.coordination.replace_namespaced_lease
            kwargs = {"name": name, "namespace": namespace, "body": body}
        kwargs |= {"_preload_content": False, "_request_timeout": self.timeout}
        resp = self._call("lease", fn, kwargs)
        obj: dict[str, Any] = json.loads(resp.data)
        return obj

    def _call(self, what: str, fn: ListFn, kwargs: dict[str, Any]) -> Any:
        try:
            return fn(**kwargs)
        except ApiException as e:
            status = int(e.status or 0)
            reason = _reason(e)
            if status == 410:
                raise GoneError(f"{what}: 410 Gone ({reason})") from e
            if status == 409:
                raise ConflictError(f"{what}: 409 Conflict ({reason})") from e
            if status == 404:
                raise NotFoundError(f"{what}: 404 Not Found ({reason})") from e
            raise ApiUnavailableError(
                f"API server {self.host} answered {status} to {what}: {reason}", status
            ) from e
        except _URLLIB3_ERRORS as e:
            raise ApiUnavailableError(f"API server {self.host} unreachable ({what}): {_cause(e)}") from e


def _reason(e: ApiException) -> str:
    try:
        body = json.loads(e.body or b"{}")
        return str(body.get("message") or e.reason)
    except ValueError:
        return str(e.reason)


def _cause(e: BaseException) -> str:
    reason = getattr(e, "reason", None)
    text = str(reason or e)
    return text.split(": ", 1)[-1][:200]
