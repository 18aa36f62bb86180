"""YAML config files read into Sections: mappings that remember their file, their dotted name and
the line of every key, so an error can say `correlator.fetch_batch (/etc/tapio.yaml line 4)`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tapio_common.errors import ConfigError


class Section(dict[str, Any]):
    """A mapping of settings and where it was written. A plain dict works wherever a Section is
    expected; it then reads as coming from `name` with no file."""

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        name: str = "",
        path: str | None = None,
        line: int | None = None,
        lines: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(data or {})
        self.name = name
        self.path = path
        self.line = line
        self.lines: dict[str, int] = dict(lines or {})

    @classmethod
    def of(cls, value: Mapping[str, Any] | None, name: str) -> Section:
        """`value` itself when it is a Section, else a Section named `name` holding it."""
        if isinstance(value, Section):
            return value
        return cls(value, name=name)

    def key_name(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def where(self, key: str | None = None) -> str:
        """`name.key (file line N)`, `name (file)`, or just the name when there is no file."""
        label = self.key_name(key) if key is not None else (self.name or "the top level")
        if self.path is None:
            return label
        line = self.lines.get(key) if key is not None else self.line
        return f"{label} ({self.path}{f' line {line}' if line else ''})"

    def child(self, key: str) -> Section:
        """The sub-mapping under `key` (empty when absent), or ConfigError when it is no mapping."""
        value = self.get(key)
        if value is None:
            return Section(name=self.key_name(key), path=self.path, line=self.lines.get(key))
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.where(key)} must be a mapping, not {type(value).__name__}")
        if isinstance(value, Section):
            return value
        return Section(value, name=self.key_name(key), path=self.path, line=self.lines.get(key))


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings are Sections carrying the line of each key."""


def _construct_section(loader: _LineLoader, node: yaml.MappingNode) -> Section:
    loader.flatten_mapping(node)
    section = Section(line=node.start_mark.line + 1)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise ConfigError(
                f"line {key_node.start_mark.line + 1}: keys must be names, not {type(key).__name__} {key!r}"
            )
        section[key] = loader.construct_object(value_node, deep=True)
        section.lines[key] = key_node.start_mark.line + 1
    return section


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_section)


def _name_sections(section: Section, name: str, path: str) -> None:
    section.name, section.path = name, path
    for key, value in section.items():
        if isinstance(value, Section):
            _name_sections(value, section.key_name(key), path)


def load_yaml(path: str) -> Section:
    """Reads a YAML mapping, or raises ConfigError naming the file, the line and the problem."""
    return parse_yaml(read_text(path), path)


def read_text(path: str, what: str = "config file") -> str:
    """A file's UTF-8 text; ConfigError when it cannot be read, or names the line that is not UTF-8
    (e.g. a Latin-1 save: a UnicodeDecodeError escaped as a traceback, or ended a SIGHUP reload)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror}") from e
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte {data[e.start]:#04x})") from e


def parse_yaml(text: str, path: str, what: str = "config file") -> Section:
    """A YAML mapping from `text` (read from `path`, named in errors as `what`): Sections all the
    way down, each knowing its line; ConfigError naming the file, the line and the problem."""
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except ConfigError as e:
        raise ConfigError(f"bad {what} {path}, {e}") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"malformed YAML in {path}{where}: {problem}") from e
    if data is None:
        return Section(path=path)
    if not isinstance(data, Section):
        raise ConfigError(f"{what} {path} must hold a mapping at the top, not {type(data).__name__}")
    _name_sections(data, "", path)
    return data
