"""Errors of the Kubernetes collector."""

from __future__ import annotations

from tapio_collector import CollectorError


class K8sCollectorError(CollectorError):
    """Base of the Kubernetes collector's errors."""


class ApiUnavailableError(K8sCollectorError):
    """The API server could not be reached or answered 5xx (retried with backoff)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class GoneError(K8sCollectorError):
    """410 Gone: the resourceVersion (or continue token) is too old; relist."""


class ConflictError(K8sCollectorError):
    """409 Conflict on a write (a stale Lease resourceVersion: someone else wrote first)."""


class NotFoundError(K8sCollectorError):
    """404 Not Found."""
