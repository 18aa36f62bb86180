"""What the collector knows about one unit (the D-Bus properties it follows) and unit names/paths.

Fed by the D-Bus adapter: ListUnitsByPatterns rows, GetAll replies and PropertiesChanged bodies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

UNIT_PATH_PREFIX = "/org/freedesktop/systemd1/unit/"
SERVICE_SUFFIX = ".service"

# D-Bus property -> UnitState field. ActiveState/SubState/StateChangeTimestamp/InvocationID live on
# org.freedesktop.systemd1.Unit; Result/ExecMain*/NRestarts on the type interface (Service, Socket...).
PROPERTY_FIELDS: Mapping[str, str] = {
    "ActiveState": "active_state",
    "SubState": "sub_state",
    "Result": "result",
    "ExecMainCode": "exit_code",
    "ExecMainStatus": "exit_status",
    "NRestarts": "restarts",
    "StateChangeTimestamp": "changed_usec",
    "InvocationID": "invocation_id",
}
FOLLOWED = tuple(PROPERTY_FIELDS)
STATE_PROPERTIES = frozenset({"ActiveState", "SubState"})

# si_code of the main process' end, as systemd reports it in ExecMainCode.
EXIT_CODE_NAMES: Mapping[int, str] = {0: "", 1: "exited", 2: "killed", 3: "dumped", 4: "trapped", 5: "stopped", 6: "continued"}  # fmt: skip


@attrs.frozen
class UnitState:
    """The followed properties of one unit at one moment (as systemd reported them)."""

    unit: str
    active_state: str = ""
    sub_state: str = ""
    result: str = ""
    exit_code: int = 0  # ExecMainCode (1 exited, 2 killed, 3 dumped)
    exit_status: int = 0  # ExecMainStatus: exit status or signal number
    restarts: int = 0  # NRestarts
    changed_usec: int = 0  # StateChangeTimestamp, µs since the epoch (0: unknown)
    invocation_id: str = ""

    @property
    def state(self) -> tuple[str, str]:
        return (self.active_state, self.sub_state)

    def updated(self, props: Mapping[str, Any]) -> UnitState:
        """This state with the followed properties of `props` (a GetAll or PropertiesChanged body)."""
        changes: dict[str, Any] = {}
        for prop, value in props.items():
            name = PROPERTY_FIELDS.get(prop)
            if name is None:
                continue
            changes[name] = _coerce(name, value)
        return attrs.evolve(self, **changes) if changes else self


def _coerce(name: str, value: Any) -> Any:
    if name == "invocation_id":
        return bytes(value).hex() if isinstance(value, bytes | bytearray | list) else str(value)
    if name in ("exit_code", "exit_status", "restarts", "changed_usec"):
        return int(value)
    return str(value)


def service_token(unit: str) -> str:
    """The `{service}` of the subject: a `.service` unit without its suffix; others keep theirs
    (`docker.socket`, sanitised to `docker_socket` by the subject builder)."""
    return unit.removesuffix(SERVICE_SUFFIX)


_ESCAPED = re.compile(r"_([0-9a-f]{2})")


def unit_name_from_path(path: str) -> str | None:
    """`kubelet.service` from `/org/freedesktop/systemd1/unit/kubelet_2eservice` (None if the path
    is not a unit's)."""
    if not path.startswith(UNIT_PATH_PREFIX):
        return None
    label = path[len(UNIT_PATH_PREFIX) :]
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), label) or None


def unit_path(unit: str) -> str:
    """The object path systemd gives a unit (sd_bus_path_encode: [A-Za-z0-9] kept, others _xx)."""
    return UNIT_PATH_PREFIX + "".join(c if c.isascii() and c.isalnum() else f"_{ord(c):02x}" for c in unit)
