"""pytest setup of the infra checks: `infra.tests.*` importable, and the live-cluster fixtures (one cluster per module)."""

import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

_ROOT = str(Path(__file__).parents[2])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

from tapio_testing import manifests as m  # noqa: E402
from tapio_testing.natscluster import NatsCluster  # noqa: E402
from tapio_testing.natsidentity import Identity, Secrets, make_secrets, workload_identity  # noqa: E402
from tapio_testing.natsprovision import nack_identity, provision_like_nack  # noqa: E402


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Secrets:
    """Certificates and passwords from make-secrets.sh, as the Secrets it writes."""
    return make_secrets(tmp_path_factory.mktemp("secrets"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, secrets: Secrets) -> Iterator[NatsCluster]:
    """The 3-node cluster running nats.conf + auth.conf, with the manifests' JetStream resources (as NACK)."""
    c = NatsCluster(tmp_path_factory.mktemp("cluster"), secrets).start()
    try:
        anyio.run(provision_like_nack, c, nack_identity(secrets, tmp_path_factory.mktemp("nack")))
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory, secrets: Secrets) -> dict[str, Identity]:
    """How each workload connects (user, password, TLS files), read from its manifest."""
    root = tmp_path_factory.mktemp("mounts")
    return {name: workload_identity(name, secrets, root) for name in m.WORKLOADS}
