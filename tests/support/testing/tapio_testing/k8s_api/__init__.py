"""A protocol-faithful Kubernetes API server for tests and benchmarks (the real `kubernetes`
client talks to it through a kubeconfig), and realistic recorded objects to feed it."""

from tapio_testing.k8s_api.server import K8sApiServer
from tapio_testing.k8s_api.store import ApiError, Store

__all__ = ["ApiError", "K8sApiServer", "Store"]
