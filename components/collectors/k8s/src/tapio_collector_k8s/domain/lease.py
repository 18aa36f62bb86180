"""Leader election over a coordination.k8s.io Lease, as a pure decision: given the Lease as read,
what this candidate does. Expiry is judged by the local clock since the record last changed (as
client-go does), never by comparing another node's renewTime with ours."""

from __future__ import annotations

import attrs


@attrs.frozen
class LeaseRecord:
    holder: str
    duration: float  # leaseDurationSeconds
    renew_time: str  # MicroTime as written by the holder
    transitions: int
    rv: str

    @property
    def key(self) -> tuple[str, str]:
        """What changes at every renewal: a new key means the holder is alive."""
        return (self.holder, self.renew_time)


@attrs.frozen
class Observed:
    key: tuple[str, str]
    at: float  # local monotonic time we first saw this key


@attrs.frozen
class Decision:
    action: str  # create | renew | takeover | wait
    observed: Observed | None


def decide(record: LeaseRecord | None, me: str, seen: Observed | None, now: float) -> Decision:
    """`create` when there is no Lease, `renew` when we hold it, `takeover` when it is free or
    its holder has not renewed for its lease duration (local time), else `wait`."""
    if record is None:
        return Decision("create", None)
    if record.holder == me:
        return Decision("renew", Observed(record.key, now))
    if not record.holder:
        return Decision("takeover", Observed(record.key, now))
    if seen is None or seen.key != record.key:
        return Decision("wait", Observed(record.key, now))
    if now - seen.at >= record.duration:
        return Decision("takeover", seen)
    return Decision("wait", seen)


def still_leader(last_renewed: float, now: float, renew_deadline: float) -> bool:
    """A holder that could not renew within `renew_deadline` (< the lease duration) stops acting as
    leader before anyone else may take the Lease over."""
    return now - last_renewed < renew_deadline
