"""Snapshots taken by a forked child: the state at fork time, failures reported, the child never left behind."""

from __future__ import annotations

import os
import time

import anyio
import pytest
import zstandard

from tapio_common.errors import ContractError
from tapio_common.model import Correlation, Event
from tapio_common.model.convert import event_from_json
from tapio_common.scenarios import load_scenarios
from tapio_correlator.engine import Engine
from tapio_correlator.errors import CorrelatorError
from tapio_correlator.service.forksnap import ForkedSnapshot

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _cascade() -> list[Event]:
    return [event_from_json(line) for line in load_scenarios(pattern="cascade*")[0].lines]


def _reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


async def test_the_snapshot_is_the_state_at_fork_time_while_the_parent_goes_on() -> None:
    events = _cascade()
    cut = len(events) // 2
    engine = Engine()
    out: list[Correlation] = []
    for ev in events[:cut]:
        out += engine.process(ev)
    at_fork = engine.snapshot()
    job = ForkedSnapshot()
    job.start(engine)
    pid = job.pid
    rest: list[Correlation] = []
    for ev in events[cut:]:  # the parent changes its engine while the child pickles its copy
        rest += engine.process(ev)
    rest += engine.finish()
    snap = await job.result()

    data = zstandard.ZstdDecompressor().decompress(snap.blob, max_output_size=snap.size)
    assert data == at_fork
    assert 0 < snap.child_private_mb <= snap.child_rss_mb
    assert _reaped(pid)
    restored = Engine.restore(data)
    replayed: list[Correlation] = []
    for ev in events[cut:]:
        replayed += restored.process(ev)
    assert replayed + restored.finish() == rest, "the restored copy continues exactly as the original did"


class _Broken(Engine):
    def snapshot(self) -> bytes:
        raise ContractError("state cannot be pickled: an open socket")


class _Slow(Engine):
    def snapshot(self) -> bytes:
        time.sleep(60)
        return b""


async def test_a_failing_child_reports_its_error() -> None:
    job = ForkedSnapshot()
    job.start(_Broken())
    with pytest.raises(CorrelatorError, match="ContractError: state cannot be pickled: an open socket"):
        await job.result()


async def test_cancelling_the_wait_kills_and_reaps_the_child() -> None:
    job = ForkedSnapshot()
    job.start(_Slow())
    pid = job.pid
    with anyio.move_on_after(0.3) as scope:
        await job.result()
    assert scope.cancelled_caught
    assert _reaped(pid), "killed and reaped: no zombie left behind"


async def test_a_child_that_does_not_finish_in_time_is_killed() -> None:
    job = ForkedSnapshot(time_limit=0.3)
    job.start(_Slow())
    pid = job.pid
    with pytest.raises(CorrelatorError, match="did not finish within 0 s"):
        await job.result()
    assert _reaped(pid)
