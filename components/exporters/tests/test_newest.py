"""The newest delivered revision per alert id: what a sink keeping one record per alert drops."""

from __future__ import annotations

from collections.abc import Sequence

from tapio_common.model import Alert, AlertState
from tapio_exporters.domain.newest import NewestDelivered
from tapio_testing.alerts import tricky


def revs(alerts: Sequence[Alert]) -> list[tuple[int, str]]:
    return [(a.revision, a.state.token) for a in alerts]


def test_an_older_revision_after_a_newer_one_is_stale() -> None:
    newest = NewestDelivered()
    fresh, stale = newest.split([tricky(revision=1), tricky(AlertState.UPDATED, revision=2)])
    assert revs(fresh) == [(1, "firing"), (2, "updated")]
    assert stale == []
    newest.confirm(fresh)
    # redelivered (an ack lost when a NATS node died): revision 1 again, then the same revision 2
    fresh, stale = newest.split([tricky(revision=1), tricky(AlertState.UPDATED, revision=2)])
    assert fresh == []
    assert revs(stale) == [(1, "firing"), (2, "updated")]
    fresh, stale = newest.split([tricky(AlertState.RESOLVED, revision=2), tricky(id="other", revision=1)])
    assert revs(fresh) == [(2, "resolved"), (1, "firing")]
    assert stale == []


def test_within_one_batch_a_revision_after_a_newer_one_is_stale() -> None:
    newest = NewestDelivered()
    fresh, stale = newest.split([tricky(AlertState.UPDATED, revision=3), tricky(revision=1)])
    assert revs(fresh) == [(3, "updated")]
    assert revs(stale) == [(1, "firing")]
    assert "a1b2c3" not in newest  # nothing remembered until the receiver confirmed


def test_learned_from_the_receiver_and_bounded() -> None:
    newest = NewestDelivered(max_ids=2)
    newest.learn("a1b2c3", (4, 2))
    newest.learn("a1b2c3", (2, 1))  # older: kept at 4
    assert revs(newest.split([tricky(AlertState.UPDATED, revision=4)])[1]) == [(4, "updated")]
    newest.learn("b", (1, 1))
    newest.learn("c", (1, 1))  # a1b2c3 is the least recent: forgotten
    assert len(newest) == 2
    assert "a1b2c3" not in newest
    assert revs(newest.split([tricky(revision=1)])[0]) == [(1, "firing")]
