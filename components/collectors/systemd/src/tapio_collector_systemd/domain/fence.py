"""Orders a listing against the signal stream: while a unit's properties are being read, the
signals about it that D-Bus delivered before the reply are older than what the reply says, and
must not be applied after it (they would make the unit go back in time).

D-Bus keeps one sender's messages in order, and the adapter puts a marker for each watched reply
into the signal stream at the reply's place. So: hold(unit, serial) when the read is sent;
every signal of that unit before the marker is stale; release(serial) at the marker.
"""

from __future__ import annotations


class Fence:
    def __init__(self) -> None:
        self._by_unit: dict[str, int] = {}
        self._by_serial: dict[int, str] = {}
        self.stale = 0  # signals dropped as older than a listing

    def hold(self, unit: str, serial: int) -> None:
        old = self._by_unit.get(unit)
        if old is not None:
            self._by_serial.pop(old, None)
        self._by_unit[unit] = serial
        self._by_serial[serial] = unit

    def blocks(self, unit: str) -> bool:
        """Whether a signal about `unit` at this point of the stream is older than its listing."""
        if unit in self._by_unit:
            self.stale += 1
            return True
        return False

    def release(self, serial: int) -> None:
        """The reply with this serial passed: later signals of its unit are newer than the listing."""
        unit = self._by_serial.pop(serial, None)
        if unit is not None and self._by_unit.get(unit) == serial:
            del self._by_unit[unit]

    def clear(self) -> None:
        self._by_unit.clear()
        self._by_serial.clear()

    def __len__(self) -> int:
        return len(self._by_unit)
