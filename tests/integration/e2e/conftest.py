"""Fixtures of the e2e suite: the report every scenario adds its entry to (written at session end), and
the production 3-node cluster the fault scenarios run on.

The JetStream fixtures and `anyio_backend` come from tests/integration/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tapio_testing.natscluster import NatsCluster, start_nats_cluster
from tapio_testing.netns import netns_unavailable
from tests.integration.e2e.report import Report


@pytest.fixture(scope="session")
def e2e_report() -> Iterator[Report]:
    report = Report()
    try:
        yield report
    finally:
        if report.entries:
            report.write()


@pytest.fixture(scope="module")
def e2e_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """The production 3-node cluster (TLS, auth.conf users, the manifests' R3 streams and consumers
    created as NACK), each node in its own network namespace (te2e-*) when this host can make them.
    Each scenario empties the streams first and publishes incidents of its own (fresh ids)."""
    isolated = not netns_unavailable()
    cluster = start_nats_cluster(tmp_path_factory.mktemp("cluster"), isolated=isolated, provision=True)
    try:
        yield cluster
    finally:
        cluster.stop()
