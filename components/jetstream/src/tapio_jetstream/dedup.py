"""The dedup window (pure): keys of the items handled lately, so a re-published batch or a re-emitted
event reaches the handler once. Fed by the consumer runtime with each message's keys (event ids,
correlation id:revision, alert message ids); only keys of messages whose handler returned are added.

Two generations of sets: keys go into the current one; when it holds `size / 2`, it becomes the old
one and the oldest generation is forgotten. A key is remembered for at least `size / 2` and at most
`size` later keys; the memory is that of `size` keys at most (about 100 bytes per 26-character id:
see the README for the measurement). All work is C-level set operations on the whole message.
"""

from __future__ import annotations

from collections.abc import Sequence, Set


class DedupWindow:
    """`size` 0 disables the window (every item passes)."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"dedup window must be >= 0 keys, got {size}")
        self.size = size
        self._half = max(1, size // 2)
        self._current: set[str] = set()
        self._old: set[str] = set()

    def __len__(self) -> int:
        return len(self._current) + len(self._old)

    def __contains__(self, key: str) -> bool:
        return key in self._current or key in self._old

    def fresh(self, keys: Sequence[str], pending: Set[str] = frozenset()) -> list[int] | None:
        """Indexes of the keys not seen before (the first of repeats within `keys`), or None when
        every key is fresh (the common case, answered without building a list). `pending`: keys
        of the earlier messages of the same pulled batch, not handled yet (taken out here too)."""
        if not self.size:
            return None
        unique = set(keys)
        if (
            len(unique) == len(keys)
            and self._current.isdisjoint(unique)
            and self._old.isdisjoint(unique)
            and pending.isdisjoint(unique)
        ):
            return None
        keep: list[int] = []
        taken: set[str] = set()
        for i, key in enumerate(keys):
            if key in taken or key in self._current or key in self._old or key in pending:
                continue
            taken.add(key)
            keep.append(i)
        return keep

    def add(self, keys: Sequence[str]) -> None:
        """Remembers keys whose message was handled."""
        if not self.size:
            return
        self._current.update(keys)
        if len(self._current) >= self._half:
            self._old = self._current
            self._current = set()
