"""A reader for the nats-server configuration format, enough to check Tapio's nats.conf/auth.conf."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

# nats-server size units are binary: 10GB = 10 * 1024**3 (checked against a running server's /jsz).
_UNITS = {
    "K": 1024,
    "KB": 1024,
    "M": 1024**2,
    "MB": 1024**2,
    "G": 1024**3,
    "GB": 1024**3,
    "T": 1024**4,
    "TB": 1024**4,
}
_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_VALUE_END = set(" \t\r\n,;}]")


class NatsConfError(ValueError):
    """The text is not valid in the subset of the nats-server format this reader knows."""


@attrs.frozen
class Var:
    """An unquoted `$NAME`: a config variable or environment variable, resolved by the server."""

    name: str


class _Parser:
    def __init__(self, text: str, base_dir: Path, name: str) -> None:
        self.text = text
        self.pos = 0
        self.base_dir = base_dir
        self.name = name

    def error(self, msg: str) -> NatsConfError:
        line = self.text.count("\n", 0, self.pos) + 1
        return NatsConfError(f"{self.name}:{line}: {msg}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, newlines: bool = True) -> None:
        """Skips blanks, comments and (when newlines) line breaks and list separators."""
        seps = " \t\r\n,;" if newlines else " \t\r"
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in seps:
                self.pos += 1
            elif ch == "#" or self.text.startswith("//", self.pos):
                while self.pos < len(self.text) and self.text[self.pos] != "\n":
                    self.pos += 1
            else:
                return

    def quoted(self) -> str:
        quote = self.peek()
        end = self.text.find(quote, self.pos + 1)
        if end < 0:
            raise self.error("unterminated string")
        value = self.text[self.pos + 1 : end]
        self.pos = end + 1
        return value

    def bare(self, stop: set[str]) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stop:
            self.pos += 1
        if start == self.pos:
            raise self.error(f"expected a value, found {self.peek()!r}")
        return self.text[start : self.pos]

    def mapping(self, end: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while True:
            self.skip()
            ch = self.peek()
            if ch == end:
                self.pos += 1
                return result
            if ch == "":
                raise self.error(f"missing {end!r}")
            key = self.quoted() if ch in "\"'" else self.bare(set(" \t\r\n:={"))
            self.skip(newlines=False)
            if key == "include":
                path = self.base_dir / (self.quoted() if self.peek() in "\"'" else self.bare(_VALUE_END))
                result.update(parse_file(path))
                continue
            if self.peek() in ":=":
                self.pos += 1
                self.skip(newlines=False)
            if key in result:
                raise self.error(f"duplicate key {key!r}")
            result[key] = self.value()

    def array(self) -> list[Any]:
        items: list[Any] = []
        while True:
            self.skip()
            if self.peek() == "]":
                self.pos += 1
                return items
            if self.peek() == "":
                raise self.error("missing ']'")
            items.append(self.value())

    def value(self) -> Any:
        ch = self.peek()
        if ch == "{":
            self.pos += 1
            return self.mapping("}")
        if ch == "[":
            self.pos += 1
            return self.array()
        if ch in "\"'":
            return self.quoted()
        return scalar(self.bare(_VALUE_END))


def scalar(word: str) -> Any:
    """Types a bare word like nats-server does: variable, bool, integer, size with unit, or text."""
    if word.startswith("$"):
        return Var(word[1:])
    if word.lower() in _BOOLS:
        return _BOOLS[word.lower()]
    digits = word.rstrip("KMGTBkmgtb")
    unit = word[len(digits) :].upper()
    if digits.isdigit():
        if not unit:
            return int(digits)
        if unit in _UNITS:
            return int(digits) * _UNITS[unit]
    return word


def parse_text(text: str, base_dir: Path, name: str = "<text>") -> dict[str, Any]:
    """Parses a whole configuration; `include` paths are relative to base_dir."""
    parser = _Parser(text + "\n", base_dir, name)
    return parser.mapping("")


def parse_file(path: Path) -> dict[str, Any]:
    return parse_text(path.read_text(encoding="utf-8"), path.parent, str(path))


def permission_lists(perm: Any) -> tuple[list[str], list[str]]:
    """(allow, deny) of a `publish`/`subscribe` entry, which is a list or {allow, deny}."""
    if perm is None:
        return [], []
    if isinstance(perm, list):
        return [str(p) for p in perm], []
    if isinstance(perm, dict):
        return [str(p) for p in perm.get("allow", [])], [str(p) for p in perm.get("deny", [])]
    return [str(perm)], []
