"""What a killed collector emitted but never saved. Its watch state is written only once the
publisher confirmed (adapters.state marks), so a collector killed before an object's digest was
first marked (an object first seen within the last mark interval, or everything when it dies
within seconds of its first start) would list that object again as unknown and emit only
`created`, whose id carries no resourceVersion: the consumers drop it as the repeat it is, and the
change the object went through while the collector was down would be lost.

So the digest of every object emitted as `created`, and of every later state emitted of it until
its first mark, is noted before it is emitted (`to_note`); the restarted collector that lists or
watches such an object again, still unknown to its saved state, derives from the last noted digest
(`noted_pairs`): the `created` again under its once-only id (dropped as a repeat if it had been
published, published if it had not), then the changes since, with ids of the listed
resourceVersion as always. A first install has noted nothing: it emits `created` only, as a watch
ADDED of a new object does. Pure; fed by the reflector and the source."""

from __future__ import annotations

from collections.abc import Container, Iterable

from tapio_collector_k8s.domain.digest import Digest

Pair = tuple[Digest | None, Digest | None]
# Core Events are not noted: every event id of theirs carries the resourceVersion, so listing one
# again gives its id again, and a count that rose meanwhile gives a new one.
UNNOTED = frozenset({"events"})


def to_note(resource: str, pairs: Iterable[Pair], fresh: Container[str]) -> list[tuple[str, Digest]]:
    """(uid, digest) to note before `pairs` are emitted: each object emitted as `created` (no old
    digest), and each later state emitted of one not marked since (`fresh`: the caller adds the
    uids noted), so a restart derives from the last state emitted."""
    if resource in UNNOTED:
        return []
    if not fresh:
        return [(new.uid, new) for old, new in pairs if old is None and new is not None]
    return [(new.uid, new) for old, new in pairs if new is not None and (old is None or new.uid in fresh)]


def noted_pairs(noted: Digest, now: Digest | None) -> list[Pair]:
    """The (old, new) pairs to derive for an object emitted as `created`, last emitted as `noted`,
    never saved, and now listed (or watched) as `now` (None: deleted meanwhile)."""
    if now is None:
        return [(None, noted), (noted, None)]
    if noted[1:] == now[1:]:
        return [(None, noted)]
    return [(None, noted), (noted, now)]
