"""The systemd manager over D-Bus (dbus-fast, asyncio): connect, Subscribe, list units, read their
properties, and turn the manager's signals into plain tuples on a bounded stream for the source.

Signals followed: PropertiesChanged of unit objects (the unit and its type interface),
UnitNew/UnitRemoved of the Manager, and NameOwnerChanged of org.freedesktop.systemd1 (systemd
restarted or re-executed). No `systemctl`: every call is a D-Bus method call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusFastError

from tapio_collector_systemd.domain.units import UNIT_PATH_PREFIX, unit_name_from_path
from tapio_collector_systemd.errors import BusError
from tapio_common.logging import get_logger

log = get_logger(__name__)

SYSTEMD = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
PROPERTIES = "org.freedesktop.DBus.Properties"
DBUS = "org.freedesktop.DBus"
# The interface of each unit type holding Result (and, for services, ExecMain* and NRestarts).
TYPE_INTERFACES: Mapping[str, str] = {
    s: f"org.freedesktop.systemd1.{s.capitalize()}"
    for s in (
        "service",
        "socket",
        "mount",
        "swap",
        "timer",
        "path",
        "automount",
        "scope",
        "slice",
        "device",
        "target",
    )
}
MATCH_RULES = (
    f"type='signal',sender='{SYSTEMD}',interface='{PROPERTIES}',member='PropertiesChanged',"
    f"path_namespace='{MANAGER_PATH}/unit'",
    f"type='signal',sender='{SYSTEMD}',interface='{MANAGER}',path='{MANAGER_PATH}'",
    f"type='signal',sender='{DBUS}',interface='{DBUS}',member='NameOwnerChanged',arg0='{SYSTEMD}'",
)

# What the stream carries (all plain Python values):
#   ("props", unit, interface, {property: value})      a unit's PropertiesChanged
#   ("new", unit) / ("removed", unit)                  UnitNew / UnitRemoved
#   ("owner", new_owner)                                org.freedesktop.systemd1 got a new owner ("" = gone)
Signal = tuple[Any, ...]


def type_interface(unit: str) -> str | None:
    return TYPE_INTERFACES.get(unit.rpartition(".")[2])


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Variant) else value


class SystemdBus:
    """One connection to the bus systemd is on (the system bus, or `address`)."""

    def __init__(self, address: str = "", queue: int = 65536, call_timeout: float = 30.0) -> None:
        self.address = address
        self.call_timeout = call_timeout
        self._bus: MessageBus | None = None
        self._send: MemoryObjectSendStream[Signal]
        self.signals: MemoryObjectReceiveStream[Signal]
        self._send, self.signals = anyio.create_memory_object_stream[Signal](queue)
        self.lost = 0
        self.received = 0  # signals taken from the bus

    @property
    def where(self) -> str:
        return self.address or "the system bus"

    async def connect(self) -> None:
        """Connects, adds the match rules and subscribes to the manager. Raises BusError."""
        self.close()
        try:
            if self.address:
                bus = MessageBus(bus_address=self.address)
            else:
                bus = MessageBus(bus_type=BusType.SYSTEM)
            with anyio.fail_after(self.call_timeout):
                await bus.connect()
        except (OSError, DBusFastError, TimeoutError, EOFError) as e:  # refused, no socket, auth, bad address
            raise BusError(f"cannot connect to {self.where}: {e or type(e).__name__}") from e
        bus.add_message_handler(self._on_message)
        self._bus = bus
        for rule in MATCH_RULES:
            await self.call(DBUS, "/org/freedesktop/DBus", DBUS, "AddMatch", "s", [rule])
        await self.subscribe()

    async def subscribe(self) -> None:
        """Manager.Subscribe: systemd emits unit signals to subscribed clients (again after it restarts)."""
        try:
            await self.call(SYSTEMD, MANAGER_PATH, MANAGER, "Subscribe")
        except BusError as e:
            if "AlreadySubscribed" not in str(e):  # systemd kept this client's subscription: fine
                raise

    def close(self) -> None:
        if self._bus is not None:
            self._bus.disconnect()
            self._bus = None

    async def wait_disconnected(self) -> None:
        assert self._bus is not None
        try:
            await self._bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
        except (OSError, EOFError, DBusFastError) as e:  # an unexpected end comes as the exception
            log.debug("bus connection ended", error=str(e) or type(e).__name__)

    async def call(
        self, dest: str, path: str, iface: str, member: str, signature: str = "", body: Sequence[Any] = ()
    ) -> list[Any]:
        """One method call; its reply body. Raises BusError (with the D-Bus error name)."""
        if self._bus is None or not self._bus.connected:
            raise BusError(f"not connected to {self.where}")
        msg = Message(
            destination=dest, path=path, interface=iface, member=member, signature=signature, body=list(body)
        )
        try:
            with anyio.fail_after(self.call_timeout):
                reply = await self._bus.call(msg)
        except TimeoutError as e:
            raise BusError(
                f"{iface}.{member} on {self.where}: no reply within {self.call_timeout:.0f}s"
            ) from e
        except (OSError, EOFError) as e:
            raise BusError(f"{iface}.{member} on {self.where}: connection lost ({e})") from e
        if reply.message_type is MessageType.ERROR:
            detail = reply.body[0] if reply.body else ""
            raise BusError(f"{iface}.{member} on {self.where}: {reply.error_name}: {detail}")
        return list(reply.body)

    async def list_units(self, patterns: Sequence[str]) -> list[tuple[str, str]]:
        """(name, object path) of the loaded units matching the globs (ListUnitsByPatterns)."""
        (rows,) = await self.call(
            SYSTEMD, MANAGER_PATH, MANAGER, "ListUnitsByPatterns", "asas", [[], list(patterns)]
        )
        return [(row[0], row[6]) for row in rows]

    async def load_unit(self, unit: str) -> str:
        """The object path of a unit, loading it if systemd has not (LoadUnit)."""
        (path,) = await self.call(SYSTEMD, MANAGER_PATH, MANAGER, "LoadUnit", "s", [unit])
        return str(path)

    async def properties(self, unit: str, path: str) -> dict[str, Any]:
        """The unit's Unit interface properties merged with those of its type interface."""
        (props,) = await self.call(SYSTEMD, path, PROPERTIES, "GetAll", "s", [UNIT])
        merged = {k: _plain(v) for k, v in props.items()}
        iface = type_interface(unit)
        if iface is not None and iface != UNIT:
            (typed,) = await self.call(SYSTEMD, path, PROPERTIES, "GetAll", "s", [iface])
            merged.update({k: _plain(v) for k, v in typed.items()})
        return merged

    def _on_message(self, msg: Message) -> None:
        if msg.message_type is not MessageType.SIGNAL:
            return None
        member = msg.member
        if member == "PropertiesChanged":
            path = msg.path or ""
            if not path.startswith(UNIT_PATH_PREFIX):
                return None
            unit = unit_name_from_path(path)
            if unit is None:
                return None
            iface, changed = msg.body[0], msg.body[1]
            self._put(("props", unit, iface, {k: _plain(v) for k, v in changed.items()}))
        elif member == "UnitNew" and msg.interface == MANAGER:
            self._put(("new", msg.body[0]))
        elif member == "UnitRemoved" and msg.interface == MANAGER:
            self._put(("removed", msg.body[0]))
        elif member == "NameOwnerChanged" and msg.body and msg.body[0] == SYSTEMD:
            self._put(("owner", msg.body[2]))
        return None

    def _put(self, item: Signal) -> None:
        self.received += 1
        try:
            self._send.send_nowait(item)
        except anyio.WouldBlock:
            self.lost += 1  # the source sees it and relists (nothing is lost silently)

    def take_lost(self) -> int:
        """Signals dropped because the stream was full since the last call (the source relists)."""
        lost, self.lost = self.lost, 0
        return lost
