"""Which interfaces are reported: include and exclude name globs, decided once per name."""

from __future__ import annotations

import fnmatch


class InterfaceFilter:
    """`selected(name)`: matches an include glob and no exclude glob. Decisions are cached per
    name (bounded: the cache is cleared past `max_names`)."""

    def __init__(
        self, include: tuple[str, ...] = ("*",), exclude: tuple[str, ...] = (), max_names: int = 65536
    ):
        self.include = include
        self.exclude = exclude
        self._max = max_names
        self._cache: dict[str, bool] = {}

    def selected(self, name: str) -> bool:
        hit = self._cache.get(name)
        if hit is None:
            hit = any(fnmatch.fnmatchcase(name, g) for g in self.include) and not any(
                fnmatch.fnmatchcase(name, g) for g in self.exclude
            )
            if len(self._cache) >= self._max:
                self._cache.clear()
            self._cache[name] = hit
        return hit
