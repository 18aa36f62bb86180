"""pytest plugin: the `jetstream` fixture serving real JetStream (engine reported), and `nats_cluster`.

Load with `-p tapio_testing.pytest_plugin` or `pytest_plugins = [...]` in a conftest.
The engine comes from $TAPIO_NATS_ENGINE (auto|container|binary, default auto); the report header
says which one serves and why, and every test using a fixture shows it (`PASSED [container]` in -v,
and a `jetstream_engine` property in junit XML). `@each_engine` runs a test once per engine
(`[container]`/`[binary]` ids): an unavailable container engine skips under auto and fails when
TAPIO_NATS_ENGINE=container. `nats_cluster` is the production 3-node cluster (tapio_testing.natscluster:
nats.conf + auth.conf, TLS with client certificates), its nodes as nats-server processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tapio_common.errors import TapioError
from tapio_testing.engine import ENGINE_ENV, ENGINES, EngineChoice, choose_engine, requested_engine
from tapio_testing.jetstream import JetStreamServer, start_jetstream
from tapio_testing.natscluster import NatsCluster, start_nats_cluster
from tapio_testing.skip_policy import skip_not_requested

ENGINE_PROPERTY = "jetstream_engine"
_choice_key = pytest.StashKey[EngineChoice | str]()  # the session's choice, or why it failed

each_engine = pytest.mark.parametrize("jetstream_engine", ENGINES, indirect=True)
"""Run the decorated test once per engine (its `jetstream` uses that engine)."""


def _session_choice(config: pytest.Config) -> EngineChoice | str:
    if _choice_key not in config.stash:
        try:
            config.stash[_choice_key] = choose_engine()
        except TapioError as e:
            config.stash[_choice_key] = str(e)
    return config.stash[_choice_key]


def pytest_report_header(config: pytest.Config) -> str:
    choice = _session_choice(config)
    if isinstance(choice, str):
        return f"jetstream engine: UNAVAILABLE: {choice}"
    return f"jetstream engine: {choice.describe()}"


@pytest.fixture
def jetstream_engine(request: pytest.FixtureRequest) -> EngineChoice:
    """The engine serving this test's JetStream: the session's, or the `@each_engine` parameter."""
    wanted: str | None = getattr(request, "param", None)
    if wanted is None:
        choice = _session_choice(request.config)
        if isinstance(choice, str):
            pytest.fail(choice, pytrace=False)
        return choice
    try:
        requested = requested_engine()
    except TapioError as e:
        pytest.fail(str(e), pytrace=False)
    if wanted == "binary":
        if requested == "container":
            skip_not_requested(f"{ENGINE_ENV}=container")
        return choose_engine("binary")
    if requested == "binary":
        skip_not_requested(f"{ENGINE_ENV}=binary")
    session = _session_choice(request.config)
    if isinstance(session, EngineChoice) and session.engine == "container":
        return session
    detail = session if isinstance(session, str) else session.detail
    if requested == "container":
        pytest.fail(f"container engine unavailable: {detail}", pytrace=False)
    pytest.skip(f"no container engine: {detail}")


def _record(request: pytest.FixtureRequest, engine: str) -> None:
    props = request.node.user_properties
    if (ENGINE_PROPERTY, engine) not in props:
        props.append((ENGINE_PROPERTY, engine))


@pytest.fixture
def jetstream(request: pytest.FixtureRequest, jetstream_engine: EngineChoice) -> Iterator[JetStreamServer]:
    """A fresh JetStream server for this test (own port, own store), stopped afterwards.

    `.url`, `.engine`, `.kill()` (SIGKILL), `.restart()` (same port and store), `.stop()`.
    """
    try:
        server = start_jetstream(jetstream_engine)
    except TapioError as e:
        pytest.fail(f"JetStream ({jetstream_engine.describe()}) did not start: {e}", pytrace=False)
    _record(request, server.engine)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """A fresh production 3-node cluster (nats-jetstream-0..2 on 127.0.0.1) for this test, stopped
    afterwards; no streams yet (`.provision()` creates the manifests' ones, as NACK). `.urls`,
    `.nodes`, `.identity("tapio-correlator")`, `.kill(name)` / `.restart(name)`."""
    cluster = start_nats_cluster(tmp_path / "nats-cluster")
    try:
        yield cluster
    finally:
        cluster.stop()


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    """`PASSED [container]` / `FAILED [binary]` in -v for tests served by a JetStream fixture."""
    if report.when != "call":
        return None
    engines = [str(v) for k, v in report.user_properties if k == ENGINE_PROPERTY]
    if not engines:
        return None
    tag = f"[{','.join(engines)}]"
    if report.passed:
        return "passed", ".", (f"PASSED {tag}", {"green": True})
    if report.failed:
        return "failed", "F", (f"FAILED {tag}", {"red": True})
    return None
