"""Time is injected: the service reads it from a ``Clock``, and tests move a ``FakeClock``."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


class Clock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FakeClock(Clock):
    """A clock tests move. Whatever zone it is set in, it answers in UTC like ``Clock``:
    SQLite keeps only the wall time, so every stored time must be UTC."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = (start or datetime.now(timezone.utc)).astimezone(timezone.utc)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> None:
        self._now += timedelta(**delta)

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(timezone.utc)
