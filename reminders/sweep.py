"""Sweeps: plain functions that look at the database and say what is due now.

A sweep takes a ``SweepCtx`` (one transaction, the injected time, the settings, a ``Pusher``)
and returns how many pushes it queued. It is idempotent by its keys, so it may run late,
twice, or on two instances. ``Sweeper.run_once`` runs every registered sweep, each in its own
transaction (one failing does not stop the others).
"""
from __future__ import annotations

import gc
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Callable, Iterator, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import event
from sqlmodel import Session

from bot.clock import Clock
from bot.config import MonthlyConfig, RemindersConfig
from bot.db import Database, optimize
from bot.workcal import WorkCalendar
from models.base import READ_CACHE
from reminders.pusher import Pusher
from reminders.quiet import is_quiet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepCtx:
    session: Session
    now: datetime
    tz: ZoneInfo
    calendar: WorkCalendar
    pusher: Pusher
    settings: RemindersConfig
    quiet_hours: str
    areas: dict[str, str]
    monthly: MonthlyConfig = MonthlyConfig()

    @property
    def local_now(self) -> datetime:
        return self.now.astimezone(self.tz)

    @property
    def today(self) -> date:
        return self.local_now.date()

    @property
    def daytime(self) -> bool:
        """Outside the quiet hours: daily routine sweeps wait for the morning."""
        return not is_quiet(self.now, self.tz, self.quiet_hours)


Sweep = Callable[[SweepCtx], int]


class Sweeper:
    def __init__(self, *, db: Database, clock: Clock, tz: ZoneInfo, calendar: WorkCalendar,
                 pusher: Pusher, settings: RemindersConfig, quiet_hours: str,
                 areas: dict[str, str], sweeps: Sequence[tuple[str, Sweep]],
                 wake: Callable[[], None] = lambda: None,
                 monthly: MonthlyConfig = MonthlyConfig()) -> None:
        self.db, self.clock, self.sweeps, self.wake = db, clock, tuple(sweeps), wake
        self._fixed = dict(tz=tz, calendar=calendar, pusher=pusher, settings=settings,
                           quiet_hours=quiet_hours, areas=areas, monthly=monthly)

    async def run_once(self) -> dict[str, int]:
        """Run every sweep for the present moment; their counts by name (-1: it failed)."""
        now = self.clock.now()
        results: dict[str, int] = {}
        for name, sweep in self.sweeps:
            try:
                results[name] = await self.db.run(self._run, sweep=sweep, now=now)
            except Exception:
                log.exception("sweep %s failed", name)
                results[name] = -1
        if self.db.is_sqlite:  # keep SQLite's planner statistics current (bot.db.optimize)
            try:
                await self.db.run(optimize)
            except Exception:
                log.exception("PRAGMA optimize failed")
        # one line a pass: with several instances it shows which one's sweeps ran and queued
        log.info("reminder sweeps ran: queued %d (%s)", sum(n for n in results.values() if n > 0),
                 ", ".join(f"{name} {n}" for name, n in results.items() if n) or "nothing due")
        if any(n > 0 for n in results.values()):
            self.wake()
        return results

    def _run(self, *, session: Session, sweep: Sweep, now: datetime) -> int:
        # A sweep asks the same small questions for thousands of items (whose roles, which
        # unit is above, snoozed?): read them once (models.base.read_cache), and keep what it
        # loads (a session holds its objects weakly: a unit's row would be read again for
        # every hazard of it).
        session.info[READ_CACHE] = {}
        loaded: list[object] = []
        event.listen(session, "loaded_as_persistent", lambda _s, obj: loaded.append(obj))
        with collector.paused():
            return sweep(SweepCtx(session=session, now=now, **self._fixed))


class _Collector:
    """No automatic garbage collection while a sweep runs (a few seconds at most). A sweep
    creates and keeps tens of thousands of objects (ORM rows, pushes); at the default
    thresholds the collector's full passes walked all of them again and again, half the
    CPU of a district's sweep (bench/growth.py). Nested and concurrent uses are counted:
    the collector resumes when the last one ends, if it was on before the first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.was_enabled = True

    @contextmanager
    def paused(self) -> Iterator[None]:
        with self.lock:
            if self.depth == 0:
                self.was_enabled = gc.isenabled()
                gc.disable()
            self.depth += 1
        try:
            yield
        finally:
            with self.lock:
                self.depth -= 1
                if self.depth == 0 and self.was_enabled:
                    gc.enable()


collector = _Collector()
