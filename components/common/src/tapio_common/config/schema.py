"""How a component declares its settings: one frozen attrs class whose fields are `setting(...)`
(default, help, env var, flag) or `group(...)` (a nested settings class = a YAML sub-section).

Pure declarations (no I/O): `tapio_common.config.loader` reads them to build flags, `--help` and
the settings themselves, so each default is written exactly once, here in the class.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Literal, TypeVar

import attrs

from tapio_common.errors import ConfigError

META = "tapio_setting"
"""Key of a field's attrs metadata that holds its SettingMeta."""

NANOS = 1_000_000_000

T = TypeVar("T")
Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


@attrs.frozen
class SettingMeta:
    """What the loader knows about one field besides its type and default."""

    help: str
    env: str | None = None
    # The command-line flag: None derives `--field-name` (for unit "ns": `--name` without `_ns`);
    # "" means no flag (file and environment only).
    flag: str | None = None
    metavar: str | None = None
    # "ns": the value is an int of nanoseconds; people write seconds (`<name>_seconds` in YAML,
    # the flag in seconds) and `--help` shows seconds. The field name must end in `_ns`.
    unit: Literal["ns"] | None = None
    # Shown in --help instead of the default when the default is computed (factory).
    default_text: str | None = None
    group: bool = False


def setting(
    default: Any = attrs.NOTHING,
    help: str = "",
    *,
    env: str | None = None,
    flag: str | None = None,
    metavar: str | None = None,
    unit: Literal["ns"] | None = None,
    check: Validator | None = None,
    factory: Callable[[], Any] | None = None,
    converter: Callable[[Any], Any] | None = None,
    default_text: str | None = None,
) -> Any:
    """One setting. `check` is an attrs validator (see `at_least`, `above`, `one_of`, `port`)
    raising ConfigError; the loader adds where the bad value came from."""
    if not help:
        raise TypeError("every setting needs its help text")
    meta = SettingMeta(help=help, env=env, flag=flag, metavar=metavar, unit=unit, default_text=default_text)
    kwargs: dict[str, Any] = {"metadata": {META: meta}, "validator": check, "converter": converter}
    if factory is not None:
        kwargs["factory"] = factory
    else:
        kwargs["default"] = default
    return attrs.field(**kwargs)


def group(cls: type[Any], help: str) -> Any:
    """A nested settings class: its fields live in a YAML sub-section named like this field, and
    its flags join the command line (under a heading made of `help`)."""
    return attrs.field(factory=cls, metadata={META: SettingMeta(help=help, group=True)})


def meta_of(field: attrs.Attribute[Any]) -> SettingMeta:
    """The SettingMeta of a field (a plain attrs field gets one with its name as help, no flag)."""
    meta = field.metadata.get(META)
    return meta if isinstance(meta, SettingMeta) else SettingMeta(help=field.name, flag="")


def user_name(field: attrs.Attribute[Any]) -> str:
    """The name people write: `reorder_slack` for a `reorder_slack_ns` field in unit ns."""
    if meta_of(field).unit == "ns":
        return field.name.removesuffix("_ns")
    return field.name


# Validators: attrs validators that raise ConfigError naming the setting and the bad value.


def at_least(minimum: float) -> Validator:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value < minimum:
            raise ConfigError(
                f"{_shown(attribute)} must be >= {_num(minimum, attribute)}, got {_num(value, attribute)}"
            )

    return check


def above(minimum: float) -> Validator:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value <= minimum:
            raise ConfigError(
                f"{_shown(attribute)} must be > {_num(minimum, attribute)}, got {_num(value, attribute)}"
            )

    return check


def one_of(choices: Collection[Any]) -> Validator:
    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            shown = ", ".join(str(c) for c in choices)
            raise ConfigError(f"{_shown(attribute)} must be one of {shown}, got {value!r}")

    return check


def port(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A TCP port, 0 meaning any free port."""
    if not 0 <= value <= 65535:
        raise ConfigError(f"{_shown(attribute)} must be a port 0-65535, got {value}")


def _shown(attribute: attrs.Attribute[Any]) -> str:
    return f"{user_name(attribute)}_seconds" if meta_of(attribute).unit == "ns" else attribute.name


def _num(value: Any, attribute: attrs.Attribute[Any]) -> str:
    if meta_of(attribute).unit == "ns" and isinstance(value, int | float):
        return f"{value / NANOS:g}"
    return str(value)
