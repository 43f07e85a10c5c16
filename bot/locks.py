"""Per-key asyncio locks that disappear when nobody holds or waits for them."""
from __future__ import annotations

import asyncio


class Slot:
    """One key's lock, how many turns claim it, and how many turns that may have written its
    conversation ended under it (``writes``: a turn that read the conversation before taking
    the lock compares it to know whether what it read is still current)."""

    __slots__ = ("lock", "users", "writes")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0
        self.writes = 0


class KeyedLocks:
    def __init__(self) -> None:
        self._slots: dict[str, Slot] = {}

    def claim(self, key: str) -> Slot:
        """The key's slot, kept until ``release`` (whether or not the caller takes its lock)."""
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = Slot()
        slot.users += 1
        return slot

    def release(self, key: str, slot: Slot) -> None:
        slot.users -= 1
        if not slot.users:
            del self._slots[key]

    def __len__(self) -> int:
        return len(self._slots)
