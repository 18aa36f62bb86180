"""The one settings loader: builds a component's frozen attrs settings class (declared with
`tapio_common.config.schema`) from flags > environment > its YAML section > defaults with cattrs,
generates the argparse flags and their `--help` from the same class, and lists the YAML keys.

Fed by: a parsed `argparse.Namespace` (flags made by `add_settings_arguments`), the environment,
and a `Section` (the component's part of the `--config` file, `CommonConfig.section`).
"""

from __future__ import annotations

import argparse
import enum
import os
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import cattrs

from tapio_common.config.schema import NANOS, SettingMeta, meta_of, user_name
from tapio_common.config.yamldoc import Section
from tapio_common.errors import ConfigError

T = TypeVar("T")
_MISSING: Any = object()
_COLLECTIONS = (frozenset, tuple, list, set)
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def _int(value: Any, _tp: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError("expected a whole number")


def _float(value: Any, _tp: Any) -> float:
    if not isinstance(value, bool):
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
    raise ValueError("expected a number")


def _bool(value: Any, _tp: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("expected true or false")


def _str(value: Any, _tp: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError("expected a string")


def _enum_hook(tp: type[enum.Enum]) -> Any:
    def structure(value: Any, _tp: Any) -> enum.Enum:
        if isinstance(value, tp):
            return value
        for member in tp:
            if str(member.value).lower() == str(value).strip().lower():
                return member
        raise ValueError(f"expected one of {'|'.join(str(m.value) for m in tp)}")

    return structure


CONVERTER = cattrs.Converter()
"""The cattrs converter of settings: strict scalars (YAML `yes` is not a number), strings from
flags and environment parsed, enums by value (any case)."""
CONVERTER.register_structure_hook(int, _int)
CONVERTER.register_structure_hook(float, _float)
CONVERTER.register_structure_hook(bool, _bool)
CONVERTER.register_structure_hook(str, _str)
CONVERTER.register_structure_hook_factory(
    lambda tp: isinstance(tp, type) and issubclass(tp, enum.Enum), _enum_hook
)


def _fields(cls: type[Any]) -> tuple[attrs.Attribute[Any], ...]:
    attrs.resolve_types(cls)
    return tuple(attrs.fields(cls))


def _type(field: attrs.Attribute[Any]) -> Any:
    """The field's resolved type (`_fields` resolves string annotations)."""
    return field.type


def _is_collection(tp: Any) -> bool:
    return typing.get_origin(tp) in _COLLECTIONS


def _structure(raw: Any, field: attrs.Attribute[Any], seconds: bool) -> Any:
    if seconds:  # a unit-ns field written in seconds
        value = _float(raw, float)
        return round(value * NANOS)
    if _is_collection(field.type) and isinstance(raw, str):
        raw = [item.strip() for item in raw.split(",") if item.strip()]
    try:
        return CONVERTER.structure(raw, _type(field))
    except ValueError as e:
        raise ConfigError(f"{e}, got {raw!r}") from e
    except (TypeError, cattrs.BaseValidationError) as e:
        raise ConfigError(f"expected {_describe_type(field.type)}, got {raw!r}") from e


def _describe_type(tp: Any) -> str:
    if _is_collection(tp):
        return "a list (YAML list, or comma-separated)"
    return {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def flag_name(field: attrs.Attribute[Any]) -> str | None:
    """The field's command-line flag, or None when it has none."""
    meta = meta_of(field)
    if meta.flag == "" or meta.group:
        return None
    return meta.flag or "--" + user_name(field).replace("_", "-")


def _yaml_keys(field: attrs.Attribute[Any]) -> tuple[str, ...]:
    """Keys a file may use for the field (for unit ns: `<name>_seconds` first, then `<name>_ns`)."""
    if meta_of(field).unit == "ns":
        return (f"{user_name(field)}_seconds", field.name)
    return (field.name,)


def _pick(
    field: attrs.Attribute[Any],
    section: Section,
    args: argparse.Namespace | None,
    env: Mapping[str, str],
    dest: str,
) -> tuple[Any, str, bool]:
    """(raw value, where it came from, written in seconds) for the first source that has one."""
    meta = meta_of(field)
    flag = flag_name(field)
    if args is not None and flag is not None:
        value = getattr(args, dest, _MISSING)
        if value is not _MISSING:
            return value, flag, meta.unit == "ns"
    if meta.env and env.get(meta.env, "") != "":
        return env[meta.env], f"environment variable {meta.env}", meta.unit == "ns"
    found = [k for k in _yaml_keys(field) if k in section]
    if len(found) > 1:
        raise ConfigError(f"{section.where(found[1])}: set {found[0]} or {found[1]}, not both")
    if found:
        return section[found[0]], section.where(found[0]), found[0].endswith("_seconds")
    return _MISSING, "", False


def load_settings(
    cls: type[T],
    section: Mapping[str, Any] | None = None,
    *,
    args: argparse.Namespace | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    allow: Sequence[str] = (),
    name: str = "settings",
) -> T:
    """Builds `cls` from, in order of precedence: `overrides` (code, already typed) > flags in
    `args` > `env` (default `os.environ`) > `section` (a Section from the config file, or any
    mapping, then named `name`) > `defaults` (computed at run time) > the class's defaults.

    Unknown keys in the section are refused unless listed in `allow` (sub-sections other code
    reads). Every error is one ConfigError naming the key and where it was set (flag, variable,
    or file and line)."""
    return _load(cls, Section.of(section, name), args, os.environ if env is None else env,
                 dict(overrides or {}), dict(defaults or {}), tuple(allow), "")  # fmt: skip


def _load(
    cls: type[T],
    section: Section,
    args: argparse.Namespace | None,
    env: Mapping[str, str],
    overrides: dict[str, Any],
    defaults: dict[str, Any],
    allow: tuple[str, ...],
    prefix: str,
) -> T:
    fields = _fields(cls)
    known = {k for f in fields for k in (_yaml_keys(f) if not meta_of(f).group else (f.name,))}
    for key in section:
        if key not in known and key not in allow:
            raise ConfigError(f"unknown setting {section.where(key)}; known: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for field in fields:
        init_name = field.alias or field.name
        if field.name in overrides:
            values[init_name] = overrides[field.name]
            continue
        if meta_of(field).group:
            values[init_name] = _load(
                _type(field), section.child(field.name), args, env, {}, {}, (), f"{prefix}{field.name}."
            )
            continue
        raw, where, seconds = _pick(field, section, args, env, prefix + field.name)
        if raw is _MISSING:
            if field.name in defaults:
                values[init_name] = defaults[field.name]
            elif field.default is attrs.NOTHING:
                raise ConfigError(f"missing setting {section.where(field.name)}: {meta_of(field).help}")
            continue
        try:
            value = _structure(raw, field, seconds)
            if field.converter is not None:
                value = typing.cast(Any, field.converter)(value)
            if field.validator is not None:
                field.validator(None, field, value)
        except (ConfigError, ValueError) as e:
            raise ConfigError(f"bad setting {where}: {e}") from e
        values[init_name] = value
    try:
        return cls(**values)
    except ConfigError as e:
        raise ConfigError(f"bad settings in {section.where()}: {e}") from e


def _default_of(field: attrs.Attribute[Any]) -> Any:
    default: Any = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return default.factory() if not default.takes_self else _MISSING
    return default


def default_text(field: attrs.Attribute[Any]) -> str:
    """The default as `--help` and the settings listing show it."""
    meta = meta_of(field)
    if meta.default_text is not None:
        return meta.default_text
    value = _default_of(field)
    if value is attrs.NOTHING:
        return "required"
    if value is _MISSING:
        return "computed"
    return _show(value, meta)


def _show(value: Any, meta: SettingMeta) -> str:
    if meta.unit == "ns" and isinstance(value, int):
        return f"{value / NANOS:g}"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, frozenset | tuple | list | set):
        return ",".join(sorted(str(v) for v in value)) or "none"
    if value == "":
        return '""'
    return str(value)


def _metavar(field: attrs.Attribute[Any]) -> str:
    meta = meta_of(field)
    if meta.metavar:
        return meta.metavar
    tp = _type(field)
    if meta.unit == "ns":
        return "SECONDS"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "{" + ",".join(str(m.value) for m in tp) + "}"
    if _is_collection(tp):
        return "A,B"
    return {int: "N", float: "NUM"}.get(tp, "VALUE")


def _help(field: attrs.Attribute[Any]) -> str:
    meta = meta_of(field)
    unit = " s" if meta.unit == "ns" else ""
    env = f"; env {meta.env}" if meta.env else ""
    return f"{meta.help} (default {default_text(field)}{unit}{env})".replace("%", "%%")


def add_settings_arguments(
    parser: argparse.ArgumentParser, cls: type[Any], title: str | None = None, *, prefix: str = ""
) -> None:
    """Adds one flag per setting of `cls` (and of its groups, under their own headings). Flags
    left out of the command line leave no attribute, so the environment and the file still count."""
    target = parser.add_argument_group(title) if title else parser
    for field in _fields(cls):
        meta = meta_of(field)
        if meta.group:
            add_settings_arguments(parser, _type(field), meta.help, prefix=f"{prefix}{field.name}.")
            continue
        flag = flag_name(field)
        if flag is None:
            continue
        common: dict[str, Any] = {
            "dest": prefix + field.name,
            "default": argparse.SUPPRESS,
            "help": _help(field),
        }
        if _type(field) is bool:
            target.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        else:
            target.add_argument(flag, metavar=_metavar(field), **common)


def iter_settings(cls: type[Any], prefix: str = "") -> Iterator[tuple[str, attrs.Attribute[Any]]]:
    """(dotted YAML key, field) of every setting of `cls`, groups flattened."""
    for field in _fields(cls):
        if meta_of(field).group:
            yield from iter_settings(_type(field), f"{prefix}{field.name}.")
        else:
            yield prefix + _yaml_keys(field)[0], field


def describe_settings(cls: type[Any], section: str) -> str:
    """A listing of the YAML keys of `cls` under `section:` with defaults, for an epilog or README."""
    rows = [(key, default_text(f), meta_of(f)) for key, f in iter_settings(cls)]
    width = max(len(key) for key, _, _ in rows)
    lines = [f"settings (YAML section `{section}:` of --config; a flag or variable wins over the file):"]
    for key, default, meta in rows:
        env = f" [env {meta.env}]" if meta.env else ""
        lines.append(f"  {key:<{width}}  {default:<10} {meta.help}{env}")
    return "\n".join(lines)
