"""The systemd manager over D-Bus (dbus-fast, asyncio): connect, Subscribe, list units, read their
properties, and turn the manager's signals into plain tuples on a bounded stream for the source.

Signals followed: PropertiesChanged of unit objects (the unit and its type interface),
UnitNew/UnitRemoved of the Manager, and NameOwnerChanged of org.freedesktop.systemd1 (systemd
restarted or re-executed). No `systemctl`: every call is a D-Bus method call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
PROPERTIES = "org.freedesktop.DBus.Properties"
DBUS = "org.freedesktop.DBus"
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
#   ("reply", serial)                                   where the reply to a property reading came
Signal = tuple[Any, ...]


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
        self._marks: set[int] = set()  # serials of property readings whose replies are marked
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
        self,
        dest: str,
        path: str,
        iface: str,
        member: str,
        signature: str = "",
        body: Sequence[Any] = (),
        on_serial: Callable[[int], None] | None = None,
    ) -> list[Any]:
        """One method call; its reply body. Raises BusError (with the D-Bus error name)."""
        if self._bus is None or not self._bus.connected:
            raise BusError(f"not connected to {self.where}")
        msg = Message(
            destination=dest, path=path, interface=iface, member=member, signature=signature, body=list(body)
        )
        msg.serial = self._bus.next_serial()
        if on_serial is not None:
            on_serial(msg.serial)
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

    async def properties(self, unit: str, path: str, on_serial: Callable[[int], None]) -> dict[str, Any]:
        """Every property of the unit (all its interfaces, one consistent GetAll). `on_serial` gets
        the call's serial before it is sent; the reply's place in the signal stream is marked with
        ("reply", serial), so the source can tell the signals older than this reading."""
        serials: list[int] = []

        def marked(serial: int) -> None:
            self._marks.add(serial)
            serials.append(serial)
            on_serial(serial)

        try:
            (props,) = await self.call(SYSTEMD, path, PROPERTIES, "GetAll", "s", [""], on_serial=marked)
        finally:
            self._marks.difference_update(serials)
        return {k: _plain(v) for k, v in props.items()}

    def _on_message(self, msg: Message) -> None:
        if msg.message_type is not MessageType.SIGNAL:
            if msg.reply_serial in self._marks:  # a property reading: mark its place among the signals
                self._put(("reply", msg.reply_serial))
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
